%%% @doc The replication side of the `erlmcp_session_ha' server: which nodes are peers, the
%%% hello exchange that maps a node to its replica id, shipping frames every
%%% `sync_interval_ms' (at most ?SHA_WINDOW per peer and tick, a heartbeat when idle),
%%% applying frames and acks, sending each ack only once what it acknowledges is durable,
%%% `force_sync' waiters, and the status map.
%%%
%%% Messages go with `[noconnect, nosuspend]': replication never opens a connection (the
%%% cluster's own connection policy decides, so a partition stays a partition) and never
%%% blocks the server on a busy distribution channel.
%%%
%%% Trust: hellos, frames and acks are authenticated by the NIF under the cluster's frame
%%% keys (`auth_key_file', or the cookie). A node becomes a peer only through an
%%% authenticated hello that names it, and only if it is in `peers' (or `peers' is `auto');
%%% nothing a message claims about its sender is believed before that. A peer is removed only
%%% by an operator's `erlmcp_session_ha:retire_region/1' (or by a region retiring its own
%%% earlier incarnation); refused messages are counted in the status and logged at most
%%% once per ?REFUSAL_LOG_MS per node and reason.
%%% @hidden
-module(erlmcp_session_ha_peers).

-export([new/3, hello_all/1, handle_info/2, force_sync/3, status/1, list/1, handle_of/1,
         send_repair/3, retire/2, reload_keys/1]).

-export_type([state/0]).

-include("erlmcp_session_ha.hrl").

-define(SERVER, erlmcp_session_ha).
-define(REFUSAL_LOG_MS, 10000).

-record(peer, {node :: node(),
               id :: non_neg_integer() | undefined,
               region :: binary() | undefined,
               connected = false :: boolean(),
               last_contact_ms :: integer() | undefined}).

-record(st, {handle :: reference(),
             id :: non_neg_integer(),
             region :: binary(),
             wanted :: auto | [node()],
             sync_ms :: pos_integer(),
             peers = #{} :: #{node() => #peer{}},
             waiters = [] :: [{gen_server:from(), integer()}],
             auth_key_file :: cookie | binary(),
             %% When a refusal was last logged, per node and reason.
             logged = #{} :: #{{node(), atom()} => integer()}}).

-opaque state() :: #st{}.

%% @doc A fresh state for the store `H' (replica `Id').
-spec new(reference(), non_neg_integer(), erlmcp_session_ha_opts:opts()) -> state().
new(H, Id, #{region := Region, peers := Wanted, sync_interval_ms := SyncMs,
             auth_key_file := KeyFile}) ->
    #st{handle = H, id = Id, region = Region, wanted = Wanted, sync_ms = SyncMs,
        auth_key_file = KeyFile}.

%% @doc The store handle.
-spec handle_of(state()) -> reference().
handle_of(#st{handle = H}) -> H.

%% @doc Says hello to every connected node that may be a peer.
-spec hello_all(state()) -> state().
hello_all(St) ->
    lists:foldl(fun(N, Acc) -> hello(N, true, Acc) end, St, candidates(St)).

candidates(#st{wanted = auto}) -> nodes();
candidates(#st{wanted = List}) -> [N || N <- List, lists:member(N, nodes())].

wanted(_Node, #st{wanted = auto}) -> true;
wanted(Node, #st{wanted = List}) -> lists:member(Node, List).

hello(Node, ReplyWanted, #st{handle = H} = St) ->
    case erlmcp_session_ha_nif:hello(H, atom_to_binary(node(), utf8)) of
        {ok, Bin} -> send(Node, {sha_hello, Bin, ReplyWanted});
        {error, _} -> ok
    end,
    St.

send(Node, Msg) ->
    _ = erlang:send({?SERVER, Node}, Msg, [noconnect, nosuspend]),
    ok.

now_ms() -> erlang:system_time(millisecond).

%% @doc Handles every message the server does not handle itself.
-spec handle_info(term(), state()) -> state().
handle_info(sync, #st{sync_ms = Ms} = St) ->
    erlang:send_after(Ms, self(), sync),
    check_waiters(pump_all(St));
handle_info({nodeup, Node}, St) ->
    case wanted(Node, St) of
        true -> hello(Node, true, St);
        false -> St
    end;
handle_info({nodedown, Node}, #st{peers = Peers} = St) ->
    case maps:find(Node, Peers) of
        {ok, P} -> St#st{peers = Peers#{Node := P#peer{connected = false}}};
        error -> St
    end;
handle_info({sha_hello, Bin, ReplyWanted}, #st{handle = H} = St)
  when is_binary(Bin), is_boolean(ReplyWanted) ->
    case erlmcp_session_ha_nif:open_hello(H, Bin) of
        {ok, #{id := Id, region := Region, node := NodeBin}} ->
            %% The node the authenticated hello names, not one a message claims: an atom
            %% that does not exist here is no connected node.
            try binary_to_existing_atom(NodeBin, utf8) of
                Node ->
                    case wanted(Node, St) of
                        true -> on_hello(Node, Id, Region, ReplyWanted, St);
                        false -> St
                    end
            catch error:badarg -> St
            end;
        {error, Reason} ->
            refused(hello, hello, Reason, St)
    end;
handle_info({sha_hello, _Node, _Id, _Region, _ReplyWanted}, St) ->
    %% The unauthenticated hello of an older build: never believed.
    refused(hello, hello, {unauthenticated, <<"hello without a MAC (older build?)">>}, St);
handle_info({sha_frame, Node, Bin}, St) when is_atom(Node), is_binary(Bin) ->
    on_frame(Node, Bin, contact(Node, St));
handle_info({{sha_ack_ready, Node, Reply}, ok}, St) ->
    send(Node, {sha_ack, node(), Reply}),
    St;
handle_info({{sha_ack_ready, Node, _Reply}, {error, Reason}}, St) ->
    logger:error("erlmcp_session_ha: frame from ~p not made durable, not acked: ~p", [Node, Reason]),
    St;
handle_info({sha_ack, Node, Bin}, #st{handle = H} = St) when is_atom(Node), is_binary(Bin) ->
    case erlmcp_session_ha_nif:'receive'(H, Bin) of
        {ok, _, _} -> check_waiters(contact(Node, St));
        {error, Reason} -> refused(Node, ack, Reason, St)
    end;
handle_info({sha_repair_request, Node, Ids}, St) when is_list(Ids) ->
    send_repair(Node, Ids, St);
handle_info(Other, St) ->
    logger:debug("erlmcp_session_ha: unexpected message ~p", [Other]),
    St.

on_hello(Node, Id, Region, ReplyWanted, #st{handle = H, peers = Peers0} = St) ->
    %% The same replica on another node name (restarted elsewhere): one entry per replica.
    Peers = maps:filter(fun(N, #peer{id = I}) -> N =:= Node orelse I =/= Id end, Peers0),
    Old = maps:get(Node, Peers, #peer{node = Node}),
    _ = case Old#peer.id of
        OldId when is_integer(OldId), OldId =/= Id ->
            %% A new incarnation (rebuilt, or it lost the end of its log): it retires its
            %% old id itself, and that retirement reaches every member with its frames.
            logger:warning("erlmcp_session_ha: ~p is a new incarnation (~p, was ~p)",
                           [Node, Id, OldId]);
        _ -> ok
    end,
    case erlmcp_session_ha_nif:add_peer(H, Id, Region) of
        ok ->
            _ = erlmcp_session_ha_nif:rewind(H, Id),
            St1 = case ReplyWanted of
                      true -> hello(Node, false, St);
                      false -> St
                  end,
            P = Old#peer{id = Id, region = Region, connected = true, last_contact_ms = now_ms()},
            pump(P, St1#st{peers = Peers#{Node => P}});
        {error, Reason} ->
            logger:warning("erlmcp_session_ha: peer ~p (~p) refused: ~p", [Node, Id, Reason]),
            St
    end.

contact(Node, #st{peers = Peers} = St) ->
    case maps:find(Node, Peers) of
        {ok, P} -> St#st{peers = Peers#{Node := P#peer{last_contact_ms = now_ms(), connected = true}}};
        error -> hello(Node, true, St)
    end.

on_frame(Node, Bin, #st{handle = H} = St) ->
    case erlmcp_session_ha_nif:'receive'(H, Bin) of
        {ok, none, _} -> St;
        {ok, Reply, none} -> send(Node, {sha_ack, node(), Reply}), St;
        {ok, Reply, Lsn} ->
            ok = erlmcp_session_ha_nif:await_durable(H, Lsn, self(), {sha_ack_ready, Node, Reply}),
            St;
        {error, Reason} -> refused(Node, frame, Reason, St)
    end.

%% Logs a refused message, at most once per ?REFUSAL_LOG_MS for one node and reason (the
%% status counts every one). A frame held back for its clock is the clock-skew alarm's line.
refused(Node, What, Reason, #st{logged = Logged} = St) ->
    Kind = case Reason of {K, _} when is_atom(K) -> K; K when is_atom(K) -> K; _ -> other end,
    Now = now_ms(),
    case maps:get({Node, Kind}, Logged, undefined) of
        Last when is_integer(Last), Now - Last < ?REFUSAL_LOG_MS -> St;
        _ ->
            case Kind of
                clock_ahead ->
                    logger:warning("erlmcp_session_ha: clock skew: ~p from ~p held back: ~p",
                                   [What, Node, Reason]);
                _ ->
                    logger:warning("erlmcp_session_ha: ~p from ~p refused: ~p", [What, Node, Reason])
            end,
            St#st{logged = Logged#{{Node, Kind} => Now}}
    end.

pump_all(#st{peers = Peers} = St) ->
    maps:fold(fun(_, P, Acc) -> pump(P, Acc) end, St, Peers).

%% Ships up to ?SHA_WINDOW frames to a connected peer; a heartbeat when there is nothing,
%% so acks, lag figures and removals keep flowing.
pump(#peer{connected = true, id = Id, node = Node}, #st{handle = H} = St) when is_integer(Id) ->
    case ship(H, Id, Node, ?SHA_WINDOW, 0) of
        0 ->
            case erlmcp_session_ha_nif:heartbeat(H, Id) of
                {ok, Bin} -> send(Node, {sha_frame, node(), Bin});
                {error, _} -> ok
            end;
        _ -> ok
    end,
    St;
pump(_, St) ->
    St.

ship(_H, _Id, _Node, 0, Sent) -> Sent;
ship(H, Id, Node, Left, Sent) ->
    case erlmcp_session_ha_nif:frame_for(H, Id) of
        {ok, Bin} ->
            send(Node, {sha_frame, node(), Bin}),
            ship(H, Id, Node, Left - 1, Sent + 1);
        none -> Sent;
        {error, Reason} ->
            logger:warning("erlmcp_session_ha: no frame for ~p: ~p", [Node, Reason]),
            Sent
    end.

%% @doc Registers a `force_sync' caller; it is answered once every connected peer acked
%% everything, or at its deadline.
-spec force_sync(gen_server:from(), non_neg_integer(), state()) -> state().
force_sync(From, TimeoutMs, #st{waiters = W} = St) ->
    check_waiters(pump_all(St#st{waiters = [{From, now_ms() + TimeoutMs} | W]})).

check_waiters(#st{waiters = []} = St) -> St;
check_waiters(#st{waiters = W} = St) ->
    Behind = behind(St),
    Now = now_ms(),
    Left = lists:filter(
             fun({From, Deadline}) ->
                     if Behind =:= [] -> gen_server:reply(From, ok), false;
                        Now >= Deadline -> gen_server:reply(From, {error, {timeout, Behind}}), false;
                        true -> true
                     end
             end, W),
    St#st{waiters = Left}.

%% Connected peers that have not acknowledged everything this node holds.
behind(#st{handle = H, peers = Peers}) ->
    #{peers := PS} = erlmcp_session_ha_nif:status(H),
    Pending = maps:from_list([{Id, N} || #{id := Id, pending_ops := N} <- PS]),
    [Node || #peer{node = Node, id = Id, connected = true} <- maps:values(Peers),
             is_integer(Id), maps:get(Id, Pending, 0) > 0].

%% @doc Sends this node's full state of `Ids' to `Node' and asks for its state of them.
-spec send_repair(node(), [binary()], state()) -> state().
send_repair(Node, Ids, #st{handle = H, peers = Peers} = St) ->
    case maps:find(Node, Peers) of
        {ok, #peer{id = Id}} when is_integer(Id) ->
            case erlmcp_session_ha_nif:repair_frames(H, Id, Ids) of
                {ok, Bins} -> lists:foreach(fun(Bin) -> send(Node, {sha_frame, node(), Bin}) end, Bins);
                {error, _} -> ok
            end;
        _ -> ok
    end,
    St.

%% @doc Retires a region for good (see `erlmcp_session_ha:retire_region/1'): `Target' is a
%% peer node, or a region name (every member of that name that is not this node's replica).
-spec retire(node() | binary() | atom(), state()) ->
          {{ok, [non_neg_integer()]} | {error, term()}, state()}.
retire(Target, #st{handle = H, peers = Peers, id = Own} = St) ->
    ByNode = [Id || #peer{node = N, id = Id} <- maps:values(Peers), N =:= Target, is_integer(Id)],
    Ids = case ByNode of
              [] ->
                  Region = if is_atom(Target) -> atom_to_binary(Target, utf8);
                              true -> Target
                           end,
                  #{peers := PS} = erlmcp_session_ha_nif:status(H),
                  [Id || #{id := Id, region := R} <- PS, R =:= Region, Id =/= Own];
              _ -> ByNode
          end,
    case Ids of
        [] -> {{error, not_found}, St};
        _ ->
            Results = [{Id, erlmcp_session_ha_nif:remove_member(H, Id)} || Id <- Ids],
            case [{Id, R} || {Id, R} <- Results, R =/= ok] of
                [] ->
                    logger:notice("erlmcp_session_ha: retired ~p (~p) by operator", [Target, Ids]),
                    Left = maps:filter(fun(_, #peer{id = I}) -> not lists:member(I, Ids) end, Peers),
                    {{ok, Ids}, St#st{peers = Left}};
                [{Id, {error, R}} | _] -> {{error, {Id, R}}, St}
            end
    end.

%% @doc Reads the frame keys again (`auth_key_file', or the cookie): a key rotation.
-spec reload_keys(state()) -> ok | {error, term()}.
reload_keys(#st{handle = H, auth_key_file = File}) ->
    erlmcp_session_ha_nif:set_frame_keys(H, erlmcp_session_ha_opts:frame_keys(#{auth_key_file => File})).

%% @doc Peers, as `erlmcp_session_ha:peers/0' returns them.
-spec list(state()) -> [map()].
list(#st{peers = Peers}) ->
    [#{node => N, id => Id, region => R, connected => C}
     || #peer{node = N, id = Id, region = R, connected = C} <- maps:values(Peers)].

%% @doc The replication status map (see `erlmcp_session_ha:get_replication_status/0').
-spec status(state()) -> map().
status(#st{handle = H, peers = Peers, region = Region}) ->
    S = erlmcp_session_ha_nif:status(H),
    ById = maps:from_list([{Id, P} || #{id := Id} = P <- maps:get(peers, S)]),
    PeerMaps = maps:from_list(
                 [{N, peer_status(P, maps:get(Id, ById, #{}))} || #peer{node = N, id = Id} = P <- maps:values(Peers)]),
    Connected = [P || #{connected := true} = P <- maps:values(PeerMaps)],
    Lag = lists:max([0 | [L || #{lag_ms := L} <- maps:values(PeerMaps)]]),
    Synced = maps:size(PeerMaps) > 0 andalso length(Connected) =:= maps:size(PeerMaps)
        andalso lists:all(fun(#{pending_ops := N}) -> N =:= 0 end, Connected),
    #{region => Region,
      node => node(),
      id => maps:get(id, S),
      incarnation => maps:get(incarnation, S),
      replicas => lists:sort(maps:keys(PeerMaps)),
      lag => Lag,
      synced => Synced orelse maps:size(PeerMaps) =:= 0,
      vv => maps:get(vv, S),
      durable_vv => maps:get(durable_vv, S),
      boot => maps:get(boot, S),
      fence => maps:get(fence, S),
      tainted => maps:get(tainted, S),
      open => maps:get(open, S),
      sessions => maps:get(live_sessions, S),
      digest_root => binary:encode_hex(maps:get(digest_root, S)),
      tombstones_pending => maps:get(tombstones_pending, S),
      peers => PeerMaps,
      trust => maps:get(trust, S),
      wal => maps:get(wal, S),
      snapshot => maps:get(snapshot, S),
      store => S}.

peer_status(#peer{region = R, connected = C, last_contact_ms = Last, id = Id}, Engine) ->
    #{region => R,
      id => Id,
      connected => C,
      last_contact_ms => Last,
      acked => maps:get(acked, Engine, #{}),
      pending_ops => maps:get(pending_ops, Engine, 0),
      lag_ms => maps:get(lag_ms, Engine, 0),
      lag_exact => maps:get(lag_exact, Engine, true),
      behind_ops => maps:get(behind_ops, Engine, 0),
      state_transfer => maps:get(state_transfer, Engine, false),
      clock_ahead_ms => maps:get(clock_ahead_ms, Engine, 0)}.
