%%% A test double of erlmcp's own ETS-based `erlmcp_session_ha', written for this suite
%%% from its API and the message shapes its nodes exchange (not a copy of its code), to run
%%% a mixed cluster in erlmcp_session_ha_switchover_SUITE. Compiled and loaded by the suite on
%%% the node that plays an erlmcp node; never on the code path with this library.
%%%
%%% Shapes assumed (the ones this library's compat layer answers):
%%% - a gen_server registered locally as `erlmcp_session_ha', started by `start_link/0';
%%% - sessions are `#session_info{session_id, primary_node, secondary_nodes, session_data,
%%%   last_updated, replication_status}' records in a public named ETS table
%%%   `erlmcp_session_ha' keyed on `session_id', with `{{retry_count, Id}, N}' entries beside
%%%   them;
%%% - `start_session/2' -> `{ok, Id}' (16 random bytes), stored here, then replicated to every
%%%   secondary node asynchronously; `replicate_session/2' -> `ok' after storing on every
%%%   secondary synchronously, `{error, session_not_found}'; `failover_session/2' -> `ok'
%%%   once the new primary and the other secondaries stored it, `{error,
%%%   new_primary_store_failed}', `{error, session_not_found}'; `get_session/1' ->
%%%   `{ok, #session_info{}}' or `{error, not_found}'; `get_active_region/1' ->
%%%   `{ok, primary}' while the primary node answers a ping, else the region atom of the
%%%   first secondary that does, `{error, no_active_nodes}', `{error, not_found}';
%%% - replication to a peer is `rpc:call(Node, erlmcp_session_ha, store_session,
%%%   [#session_info{}], 5000)', expecting `ok'; `store_session/1' inserts the record as it is.
%%%
%%% erlmcp derives its secondary nodes and their regions from a fixed per-region table;
%%% the double reads them from the `erlmcp' application environment instead:
%%% `secondary_nodes' (a list of nodes) and `node_regions' (a map node => region atom).
-module(erlmcp_session_ha).
-behaviour(gen_server).

-export([start_link/0, start_session/2, replicate_session/2, failover_session/2,
         get_session/1, get_active_region/1, store_session/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-record(session_info, {session_id, primary_node, secondary_nodes = [], session_data = #{},
                       last_updated = 0, replication_status = pending}).

-define(TAB, erlmcp_session_ha).

start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

start_session(ClientId, Data) -> gen_server:call(?MODULE, {start_session, ClientId, Data}).
replicate_session(Id, Data) -> gen_server:call(?MODULE, {replicate_session, Id, Data}).
failover_session(Id, Node) -> gen_server:call(?MODULE, {failover_session, Id, Node}).
get_session(Id) -> gen_server:call(?MODULE, {get_session, Id}).
get_active_region(Id) -> gen_server:call(?MODULE, {get_active_region, Id}).

store_session(#session_info{} = S) ->
    true = ets:insert(?TAB, S),
    ok.

init([]) ->
    _ = ets:new(?TAB, [set, public, named_table, {keypos, #session_info.session_id}]),
    {ok, #{}}.

handle_call({start_session, _ClientId, Data}, _From, St) ->
    Id = crypto:strong_rand_bytes(16),
    S = #session_info{session_id = Id, primary_node = node(), secondary_nodes = secondaries(),
                      session_data = Data, last_updated = now_ms(), replication_status = pending},
    true = ets:insert(?TAB, S),
    _ = spawn(fun() ->
                      Status = case replicate(S) of ok -> synced; {error, _} -> failed end,
                      true = ets:insert(?TAB, S#session_info{replication_status = Status})
              end),
    {reply, {ok, Id}, St};
handle_call({replicate_session, Id, Data}, _From, St) ->
    case lookup(Id) of
        {ok, S0} ->
            S = S0#session_info{session_data = Data, last_updated = now_ms(), replication_status = syncing},
            true = ets:insert(?TAB, S),
            case replicate(S) of
                ok -> true = ets:insert(?TAB, S#session_info{replication_status = synced}),
                      {reply, ok, St};
                {error, _} = E -> {reply, E, St}
            end;
        {error, not_found} -> {reply, {error, session_not_found}, St}
    end;
handle_call({failover_session, Id, Node}, _From, St) ->
    case lookup(Id) of
        {ok, S0} ->
            S = S0#session_info{primary_node = Node, replication_status = pending},
            case store_on(Node, S) of
                ok ->
                    Others = [N || N <- S0#session_info.secondary_nodes, N =/= Node],
                    case [N || N <- Others, store_on(N, S) =/= ok] of
                        [] -> true = ets:insert(?TAB, S#session_info{replication_status = synced}),
                              {reply, ok, St};
                        _ -> {reply, {error, replication_failed}, St}
                    end;
                _ -> {reply, {error, new_primary_store_failed}, St}
            end;
        {error, not_found} -> {reply, {error, session_not_found}, St}
    end;
handle_call({get_session, Id}, _From, St) ->
    {reply, lookup(Id), St};
handle_call({get_active_region, Id}, _From, St) ->
    Reply = case lookup(Id) of
                {ok, #session_info{primary_node = P, secondary_nodes = Secs}} ->
                    case healthy(P) of
                        true -> {ok, primary};
                        false ->
                            case [N || N <- Secs, healthy(N)] of
                                [N | _] -> {ok, maps:get(N, application:get_env(erlmcp, node_regions, #{}), secondary)};
                                [] -> {error, no_active_nodes}
                            end
                    end;
                {error, not_found} = E -> E
            end,
    {reply, Reply, St};
handle_call(_Request, _From, St) ->
    {reply, {error, unknown_call}, St}.

handle_cast(_Msg, St) -> {noreply, St}.

%% Messages of other protocols (this library's replication hello, for one) are ignored.
handle_info(_Msg, St) -> {noreply, St}.

lookup(Id) ->
    case ets:lookup(?TAB, Id) of
        [#session_info{} = S] -> {ok, S};
        [] -> {error, not_found}
    end.

secondaries() -> application:get_env(erlmcp, secondary_nodes, []).

replicate(#session_info{secondary_nodes = Nodes} = S) ->
    case [{N, R} || N <- Nodes, (R = store_on(N, S)) =/= ok] of
        [] -> ok;
        Failed -> {error, Failed}
    end.

store_on(Node, S) -> rpc:call(Node, erlmcp_session_ha, store_session, [S], 5000).

healthy(Node) -> net_adm:ping(Node) =:= pong.

now_ms() -> erlang:system_time(millisecond).
