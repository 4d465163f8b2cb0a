%%% @doc erlmcp's existing `erlmcp_session_ha' API on the replicated store: same names,
%%% arities and result shapes as erlmcp's own module, so its session manager and runbooks
%%% keep working unchanged, and so a cluster can switch from erlmcp's ETS-based module to
%%% this library one node at a time (see `erlmcp_session_ha_switchover').
%%%
%%% A session started here is a store session with the fields `client_id', `session_data',
%%% `primary_node', `created_at' and `last_updated' (each a last-writer-wins field, values
%%% in external term format). `get_session/1' returns it as a map with the fields of
%%% erlmcp's `#session_info{}' record. `replication_status' is computed from the peers'
%%% acks: `synced' (every peer connected and caught up), `syncing' (every peer connected,
%%% some still receiving), `pending' (some peer unreachable, at least one reachable) or
%%% `failed' (peers known, none reachable).
%%%
%%% Shapes of erlmcp's module this layer speaks (assumed from erlmcp's documented API and
%%% its module's message shapes; its record is `#session_info{}' in erlmcp_session_ha.hrl):
%%% <ul>
%%% <li>a node running erlmcp's module replicates a session by
%%%     `rpc:call(Node, erlmcp_session_ha, store_session, [#session_info{}])' and expects
%%%     `ok'; {@link store_session/1} takes the record (or a map) and answers so;</li>
%%% <li>its server answers `gen_server:call' requests `{start_session, ClientId, Data}',
%%%     `{replicate_session, Id, Data}', `{failover_session, Id, Node}', `{get_session, Id}'
%%%     (`{ok, #session_info{}}' or `{error, not_found}') and `{get_active_region, Id}';
%%%     {@link legacy_call/1} answers the same requests in the same shapes for the server;</li>
%%% <li>regions are the atoms `primary | secondary | tertiary': `get_active_region/1' is
%%%     `{ok, primary}' while the session's primary node is up, else the region of the first
%%%     healthy node; `replicate_session/2' and `failover_session/2' on an unknown session
%%%     return `{error, session_not_found}'.</li>
%%% </ul>
%%% While such nodes are connected ("legacy peers": they run a registered
%%% `erlmcp_session_ha' process that is not this library's), every session started,
%%% replicated or failed over here is also stored on each of them with
%%% `rpc:call(Node, erlmcp_session_ha, store_session, [#session_info{}])', as erlmcp's module
%%% does with its secondaries, so sessions flow both ways during a switch-over. The record
%%% sent names every other node holding the session as a secondary (this one included,
%%% even when it is the primary): erlmcp's module sends the changes it makes to a
%%% session's secondaries only, and so they come back here.
%%% @hidden
-module(erlmcp_session_ha_compat).

-export([start_session/2, replicate_session/2, get_session/1, failover_session/2,
         get_active_region/1, store_session/1]).
-export([legacy_call/1, legacy_peers/0, session_info/1, region_role/1]).

-include("erlmcp_session_ha.hrl").

-define(S, erlmcp_session_ha).
-define(RPC_TIMEOUT, 5000).

-type region_role() :: primary | secondary | tertiary.

%% @doc A new session with a random 16-byte id.
-spec start_session(term(), map()) -> {ok, binary()} | {error, term()}.
start_session(ClientId, SessionData) when is_map(SessionData) ->
    Sid = crypto:strong_rand_bytes(16),
    Now = erlang:system_time(millisecond),
    case ?S:put(Sid, #{<<"client_id">> => ClientId, <<"session_data">> => SessionData,
                       <<"primary_node">> => node(), <<"created_at">> => Now,
                       <<"last_updated">> => Now}) of
        ok -> forward(Sid, legacy_peers()), {ok, Sid};
        {error, _} = E -> E
    end;
start_session(_ClientId, _SessionData) ->
    erlang:error(badarg).

%% @doc Replaces the data of an existing session.
-spec replicate_session(binary(), map()) -> ok | {error, session_not_found | term()}.
replicate_session(Sid, SessionData) when is_binary(Sid), is_map(SessionData) ->
    case ?S:get(Sid, <<"created_at">>) of
        {ok, _} ->
            case ?S:put(Sid, #{<<"session_data">> => SessionData,
                               <<"last_updated">> => erlang:system_time(millisecond)}) of
                ok -> forward(Sid, legacy_peers());
                {error, _} = E -> E
            end;
        {error, not_found} -> {error, session_not_found}
    end;
replicate_session(_Sid, _SessionData) ->
    erlang:error(badarg).

%% @doc The session as erlmcp's session manager sees it (the record's fields, as a map).
-spec get_session(binary()) -> {ok, map()} | {error, not_found}.
get_session(Sid) when is_binary(Sid) ->
    case ?S:get(Sid) of
        {ok, #{<<"created_at">> := _} = F} ->
            {ok, Status} = ?S:get_replication_status(),
            Primary = maps:get(<<"primary_node">>, F, node()),
            {ok, #{session_id => Sid,
                   primary_node => Primary,
                   secondary_nodes => [N || N <- maps:get(replicas, Status), N =/= Primary],
                   session_data => maps:get(<<"session_data">>, F, #{}),
                   last_updated => maps:get(<<"last_updated">>, F, 0),
                   replication_status => replication_status(Status)}};
        _ -> {error, not_found}
    end;
get_session(_Sid) ->
    erlang:error(badarg).

%% @doc The session as erlmcp's module returns it: a `#session_info{}' record.
-spec session_info(binary()) -> {ok, #session_info{}} | {error, not_found}.
session_info(Sid) ->
    case get_session(Sid) of
        {ok, M} ->
            {ok, #session_info{session_id = Sid,
                               primary_node = maps:get(primary_node, M),
                               secondary_nodes = maps:get(secondary_nodes, M),
                               session_data = maps:get(session_data, M),
                               last_updated = maps:get(last_updated, M),
                               replication_status = maps:get(replication_status, M)}};
        {error, not_found} = E -> E
    end.

%% `synced | syncing | pending | failed' from the peers' acks (see the module doc).
replication_status(#{peers := Peers}) when map_size(Peers) =:= 0 -> synced;
replication_status(#{peers := Peers}) ->
    Ps = maps:values(Peers),
    Connected = [P || #{connected := true} = P <- Ps],
    if Connected =:= [] -> failed;
       length(Connected) < length(Ps) -> pending;
       true ->
            case lists:all(fun(#{pending_ops := N}) -> N =:= 0 end, Connected) of
                true -> synced;
                false -> syncing
            end
    end.

%% @doc Makes `Node' the session's primary: this node, a peer, or a connected node running
%% erlmcp's own module (which is given the session first, as erlmcp's module does).
-spec failover_session(binary(), node()) ->
    ok | {error, session_not_found | {unknown_node, node()} | new_primary_store_failed | term()}.
failover_session(Sid, Node) when is_binary(Sid), is_atom(Node) ->
    case ?S:get(Sid, <<"created_at">>) of
        {error, not_found} -> {error, session_not_found};
        {ok, _} ->
            Legacy = legacy_peers(),
            Ours = [node() | [N || #{node := N} <- ?S:peers()]],
            case {lists:member(Node, Ours), lists:member(Node, Legacy)} of
                {false, false} -> {error, {unknown_node, Node}};
                {_, IsLegacy} ->
                    case store_on_new_primary(Sid, Node, Legacy, IsLegacy) of
                        ok ->
                            case ?S:put(Sid, #{<<"primary_node">> => Node,
                                               <<"last_updated">> => erlang:system_time(millisecond)}) of
                                ok -> forward(Sid, Legacy);
                                {error, _} = E -> E
                            end;
                        {error, _} = E -> E
                    end
            end
    end;
failover_session(_Sid, _Node) ->
    erlang:error(badarg).

store_on_new_primary(_Sid, _Node, _Legacy, false) -> ok;
store_on_new_primary(Sid, Node, Legacy, true) ->
    {ok, Info} = session_info(Sid),
    Moved = Info#session_info{primary_node = Node, last_updated = erlang:system_time(millisecond)},
    case remote_store(Node, for_node(Moved, Legacy, Node)) of
        ok -> ok;
        {error, _} -> {error, new_primary_store_failed}
    end.

%% @doc The region serving the session, as erlmcp's regions: `primary' while the session's
%% primary node is up, else this node's region (this node is the first healthy one).
-spec get_active_region(binary()) -> {ok, region_role()} | {error, not_found | no_active_nodes}.
get_active_region(Sid) when is_binary(Sid) ->
    case ?S:get(Sid, <<"primary_node">>) of
        {error, not_found} -> {error, not_found};
        {ok, Primary} ->
            case lists:member(Primary, [node() | nodes()]) of
                true -> {ok, primary};
                false ->
                    %% This node is always up, so `no_active_nodes' is only possible when the
                    %% store itself is gone (the call then fails before this point).
                    {ok, #{region := Own}} = ?S:get_replication_status(),
                    {ok, region_role(Own)}
            end
    end;
get_active_region(_Sid) ->
    erlang:error(badarg).

%% @doc erlmcp's region atom for a region name: `primary', `secondary' and `tertiary' (the
%% names this library's `region' option takes from erlmcp's own `region' setting) are
%% themselves; any other name is `secondary', as every region but erlmcp's primary is.
-spec region_role(binary()) -> region_role().
region_role(<<"primary">>) -> primary;
region_role(<<"tertiary">>) -> tertiary;
region_role(_) -> secondary.

%% @doc Stores a session given as erlmcp's `#session_info{}' record (what its nodes send
%% to their secondaries; an older `last_updated' than the one held here is ignored, so a
%% late copy never undoes a newer change) or as a map with the same keys.
-spec store_session(#session_info{} | map()) -> ok | {error, term()}.
store_session(#session_info{session_id = Sid} = Info) when is_binary(Sid), Sid =/= <<>> ->
    #session_info{primary_node = Primary, session_data = Data, last_updated = Updated} = Info,
    case ?S:get(Sid, <<"last_updated">>) of
        {ok, Held} when is_integer(Held), is_integer(Updated), Held > Updated -> ok;
        _ -> store(Sid, Data, Primary, Updated)
    end;
store_session(#session_info{}) ->
    {error, bad_session_id};
store_session(#{session_id := Sid} = Info) when is_binary(Sid), Sid =/= <<>> ->
    store(Sid, maps:get(session_data, Info, #{}), maps:get(primary_node, Info, node()),
          maps:get(last_updated, Info, erlang:system_time(millisecond)));
store_session(_) ->
    {error, bad_session}.

store(Sid, Data, Primary, Updated) ->
    Fields = #{<<"session_data">> => Data, <<"primary_node">> => Primary, <<"last_updated">> => Updated},
    Created = case ?S:get(Sid, <<"created_at">>) of
                  {ok, _} -> #{};
                  {error, not_found} -> #{<<"created_at">> => erlang:system_time(millisecond)}
              end,
    ?S:put(Sid, maps:merge(Fields, Created)).

%% @doc Answers a `gen_server:call' request in erlmcp's module's protocol (the server
%% calls this from a worker process, never from itself).
-spec legacy_call(term()) -> term().
legacy_call({start_session, ClientId, Data}) when is_map(Data) -> start_session(ClientId, Data);
legacy_call({replicate_session, Sid, Data}) when is_binary(Sid), is_map(Data) -> replicate_session(Sid, Data);
legacy_call({failover_session, Sid, Node}) when is_binary(Sid), is_atom(Node) -> failover_session(Sid, Node);
legacy_call({get_session, Sid}) when is_binary(Sid) -> session_info(Sid);
legacy_call({get_active_region, Sid}) when is_binary(Sid) -> get_active_region(Sid);
legacy_call(_) -> {error, unknown_call}.

%% @doc Connected nodes running erlmcp's own `erlmcp_session_ha' (a registered process of
%% that name whose module is not this library's), sorted.
-spec legacy_peers() -> [node()].
legacy_peers() ->
    Ours = [N || #{node := N} <- ?S:peers()],
    lists:sort([N || N <- nodes(), not lists:member(N, Ours), is_legacy(N)]).

is_legacy(Node) ->
    try erpc:call(Node, erlang, whereis, [?S], ?RPC_TIMEOUT) of
        Pid when is_pid(Pid) ->
            %% this library's module exports handle/0; erlmcp's does not
            not erpc:call(Node, erlang, function_exported, [?S, handle, 0], ?RPC_TIMEOUT);
        _ -> false
    catch
        _:_ -> false
    end.

%% Stores the session on each legacy peer; a peer that fails is logged, not fatal: the
%% session is durable here and replicated to this library's peers.
forward(_Sid, []) -> ok;
forward(Sid, Nodes) ->
    case session_info(Sid) of
        {ok, Info} ->
            lists:foreach(
              fun(N) ->
                      case remote_store(N, for_node(Info, Nodes, N)) of
                          ok -> ok;
                          {error, Reason} ->
                              logger:warning("erlmcp_session_ha: session not stored on ~p (erlmcp's module): ~p",
                                             [N, Reason])
                      end
              end, Nodes);
        {error, not_found} -> ok
    end.

%% The record as sent to erlmcp's module on `Node': its secondaries are every other node
%% holding the session, this one included even when it is the primary, since erlmcp's
%% module sends a change it makes only to the session's secondaries.
for_node(#session_info{secondary_nodes = Secondaries} = Info, Legacy, Node) ->
    Info#session_info{secondary_nodes = lists:usort([node() | Secondaries] ++ Legacy) -- [Node]}.

remote_store(Node, Info) ->
    try erpc:call(Node, ?S, store_session, [Info], ?RPC_TIMEOUT) of
        ok -> ok;
        Other -> {error, Other}
    catch
        Class:Reason -> {error, {Class, Reason}}
    end.
