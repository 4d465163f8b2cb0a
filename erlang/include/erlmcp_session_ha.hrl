%%% Shared definitions of the erlmcp_session_ha application.

%% Messages between the erlmcp_session_ha servers of two nodes (all carry the sender node).
%%   {sha_hello, Node, ReplicaId, Region, ReplyWanted}  identity exchange
%%   {sha_frame, Node, Bin}                               a replication frame (session-ha codec)
%%   {sha_ack, Node, Bin}                                 an ack, sent once the frame is durable
%%   {sha_repair_request, Node, [SessionId]}              "send me your state of these sessions"
-define(SHA_WINDOW, 8).
-define(SHA_CALL_TIMEOUT, 10000).

%% The session record of erlmcp's own ETS-based `erlmcp_session_ha' (same name, fields and
%% order), as its nodes pass it to peers in `rpc:call(Node, erlmcp_session_ha,
%% store_session, [#session_info{}])' and return it from its `{get_session, Id}' call. Used
%% only at the boundary with such nodes during a switch-over (erlmcp_session_ha_compat).
-record(session_info, {
    session_id :: binary(),
    primary_node :: node(),
    secondary_nodes = [] :: [node()],
    session_data = #{} :: map(),
    last_updated = 0 :: integer(),
    replication_status = pending :: synced | pending | failed | syncing
}).
