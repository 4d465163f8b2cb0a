%%% Shared definitions of the erlmcp_session_ha application.

%% Messages between the erlmcp_session_ha servers of two nodes (all carry the sender node).
%%   {sha_hello, Node, ReplicaId, Region, ReplyWanted}  identity exchange
%%   {sha_frame, Node, Bin}                               a replication frame (session-ha codec)
%%   {sha_ack, Node, Bin}                                 an ack, sent once the frame is durable
%%   {sha_repair_request, Node, [SessionId]}              "send me your state of these sessions"
-define(SHA_WINDOW, 8).
-define(SHA_CALL_TIMEOUT, 10000).
