%%% @doc Replicated, durable session state for erlmcp.
%%%
%%% A `gen_server' registered locally as `erlmcp_session_ha'. It opens the session store (the
%%% `session-ha' NIF) in its data directory, shares the handle through `persistent_term' so
%%% that reads and writes run in the caller's process (they never queue behind this server),
%%% ships replication frames to the same-named process on peer nodes over Erlang
%%% distribution, applies theirs and acks once durable, watches nodes with
%%% `net_kernel:monitor_nodes/1', and answers the calls the DR runbooks name:
%%% `get_replication_status/0', `force_sync/0,1', `validate_consistency/0', `repair/0'.
%%%
%%% Session ids and keys are binaries; values are any term (stored in external term format).
%%% A write returns once it is durable on this node; `force_sync/0' waits until every
%%% connected peer holds it too. The store takes an incremental snapshot every
%%% `snapshot_interval_ms' on its own thread.
%%%
%%% If this server crashes, its supervisor restarts it and it takes over the open store
%%% still held in `persistent_term': nothing is lost and nothing is reopened.
%%% @end
-module(erlmcp_session_ha).
-behaviour(gen_server).

%% Lifecycle
-export([start_link/0, start_link/1, child_spec/1, stop/0]).
%% Sessions
-export([put/2, put/3, put/4, await_durable/1, await_durable/2, get/1, get/2, delete/1, delete/2, touch/2,
         incr/3, counter/2, add_to_set/3, remove_from_set/3, set_members/2, session_ids/0]).
%% Operations
-export([get_replication_status/0, force_sync/0, force_sync/1, validate_consistency/0,
         repair/0, snapshot/0, verify/0, backup/1, lift_fence/0, peers/0, handle/0,
         retire_region/1, reload_auth_key/0]).
%% erlmcp's existing API
-export([start_session/2, replicate_session/2, get_session/1, failover_session/2,
         get_active_region/1, store_session/1]).
%% gen_server
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-include("erlmcp_session_ha.hrl").

-define(SERVER, ?MODULE).
-define(HANDLE_KEY, {?MODULE, handle}).
-define(DURABLE_TIMEOUT, 30000).

-export_type([session_id/0, key/0, status/0, write_opts/0, durable_token/0]).

-type session_id() :: binary().
-type key() :: binary().
-type status() :: map().
%% `durable' (the default): the call returns once the write is on disk (fsynced under
%% `always' and `{every_ms, N}'). `queued': it returns at once with a token, the write
%% applied and in the log's queue; it is on disk within N ms under `{every_ms, N}' (at the
%% next batch under `always'), and `await_durable/1' on the token waits for that. A crash
%% before then can lose a queued write, never a durable one.
-type write_opts() :: #{durability => durable | queued}.
-opaque durable_token() :: {durable_token, non_neg_integer()}.

%%====================================================================
%% Lifecycle
%%====================================================================

%% @doc Starts the server configured from the application environment (see
%% `erlmcp_session_ha_opts'), as an unchanged erlmcp child spec
%% `{erlmcp_session_ha, start_link, []}' does.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    case erlmcp_session_ha_opts:from_app_env() of
        {ok, Opts} -> gen_server:start_link({local, ?SERVER}, ?MODULE, Opts, []);
        {error, _} = E -> E
    end.

%% @doc Starts the server with the options map described in `erlmcp_session_ha_opts'.
-spec start_link(map()) -> {ok, pid()} | {error, term()}.
start_link(Opts) ->
    case erlmcp_session_ha_opts:normalize(Opts) of
        {ok, Norm} -> gen_server:start_link({local, ?SERVER}, ?MODULE, Norm, []);
        {error, _} = E -> E
    end.

%% @doc A child spec that drops into the host's supervision tree.
-spec child_spec(map()) -> supervisor:child_spec().
child_spec(Opts) ->
    #{id => ?MODULE,
      start => {?MODULE, start_link, [Opts]},
      restart => permanent,
      shutdown => 10000,
      type => worker,
      modules => [?MODULE]}.

%% @doc Stops the server and closes the store.
-spec stop() -> ok.
stop() ->
    gen_server:stop(?SERVER).

%% @doc The NIF handle of the open store (for tools and benchmarks).
-spec handle() -> reference().
handle() ->
    persistent_term:get(?HANDLE_KEY).

%%====================================================================
%% Sessions (run in the caller's process)
%%====================================================================

%% @doc Writes several fields of a session at once (one change).
-spec put(session_id(), #{key() => term()}) -> ok | {error, term()}.
put(Sid, Fields) when is_binary(Sid), is_map(Fields) ->
    Pairs = [{K, term_to_binary(V)} || {K, V} <- maps:to_list(Fields)],
    durable(erlmcp_session_ha_nif:put_fields(handle(), Sid, Pairs));
put(_Sid, _Fields) ->
    erlang:error(badarg).

%% @doc Writes one field of a session, or (with a map of fields and options) several at
%% once as `put/2' does, with the durability `write_opts()' asks for.
-spec put(session_id(), key(), term()) -> ok | {error, term()};
         (session_id(), #{key() => term()}, write_opts()) ->
             ok | {ok, durable_token()} | {error, term()}.
put(Sid, Fields, Opts) when is_binary(Sid), is_map(Fields), is_map(Opts) ->
    Pairs = [{K, term_to_binary(V)} || {K, V} <- maps:to_list(Fields)],
    acknowledge(erlmcp_session_ha_nif:put_fields(handle(), Sid, Pairs), durability(Opts));
put(Sid, Key, Value) when is_binary(Sid), is_binary(Key) ->
    durable(erlmcp_session_ha_nif:put(handle(), Sid, Key, term_to_binary(Value)));
put(_Sid, _Key, _Value) ->
    erlang:error(badarg).

%% @doc Writes one field of a session with the durability `write_opts()' asks for: `ok'
%% once on disk (`durable'), or `{ok, Token}' at once (`queued'; see `await_durable/1').
-spec put(session_id(), key(), term(), write_opts()) ->
    ok | {ok, durable_token()} | {error, term()}.
put(Sid, Key, Value, Opts) when is_binary(Sid), is_binary(Key), is_map(Opts) ->
    Mode = durability(Opts),
    acknowledge(erlmcp_session_ha_nif:put(handle(), Sid, Key, term_to_binary(Value)), Mode);
put(_Sid, _Key, _Value, _Opts) ->
    erlang:error(badarg).

%% @doc `await_durable/2' with the timeout a durable write waits (30 s).
-spec await_durable(durable_token()) -> ok | {error, term()}.
await_durable(Token) ->
    await_durable(Token, ?DURABLE_TIMEOUT).

%% @doc Returns once the queued write the token names is on disk, or with the log's error
%% (`{error, {timeout, durability}}' past `Timeout' ms).
-spec await_durable(durable_token(), timeout()) -> ok | {error, term()}.
await_durable({durable_token, Lsn}, Timeout) when is_integer(Lsn), Lsn >= 0,
                                                  (Timeout =:= infinity orelse
                                                   (is_integer(Timeout) andalso Timeout >= 0)) ->
    erlmcp_session_ha_durable:await(handle(), Lsn, Timeout);
await_durable(_Token, _Timeout) ->
    erlang:error(badarg).

%% @doc A session's fields; `{error, not_found}' when absent, ended or expired,
%% `{error, {undecodable, Key}}' when a stored value is not a term this node can decode safely.
-spec get(session_id()) -> {ok, #{key() => term()}} | {error, not_found | {undecodable, key()} | term()}.
get(Sid) when is_binary(Sid) ->
    case erlmcp_session_ha_nif:get(handle(), Sid) of
        {ok, #{fields := Fields}} -> erlmcp_session_ha_term:decode_values(Fields);
        {error, _} = E -> E
    end;
get(_Sid) ->
    erlang:error(badarg).

%% @doc One field of a session (errors as `get/1').
-spec get(session_id(), key()) -> {ok, term()} | {error, not_found | {undecodable, key()} | term()}.
get(Sid, Key) when is_binary(Sid), is_binary(Key) ->
    case erlmcp_session_ha_nif:get_field(handle(), Sid, Key) of
        {ok, V} ->
            case erlmcp_session_ha_term:decode(V) of
                {ok, _} = Ok -> Ok;
                {error, undecodable} -> {error, {undecodable, Key}}
            end;
        {error, _} = E -> E
    end;
get(_Sid, _Key) ->
    erlang:error(badarg).

%% @doc Ends a session everywhere, for good: no late or reordered change brings it back.
-spec delete(session_id()) -> ok | {error, term()}.
delete(Sid) when is_binary(Sid) ->
    durable(erlmcp_session_ha_nif:end_session(handle(), Sid));
delete(_Sid) ->
    erlang:error(badarg).

%% @doc Deletes one field of a session.
-spec delete(session_id(), key()) -> ok | {error, term()}.
delete(Sid, Key) when is_binary(Sid), is_binary(Key) ->
    durable(erlmcp_session_ha_nif:delete_field(handle(), Sid, Key));
delete(_Sid, _Key) ->
    erlang:error(badarg).

%% @doc Keeps a session alive for `TtlMs' from now (the longest deadline any region set wins);
%% once past its deadline a session reads as absent everywhere and never comes back.
-spec touch(session_id(), pos_integer()) -> ok | {error, term()}.
touch(Sid, TtlMs) when is_binary(Sid), is_integer(TtlMs), TtlMs > 0 ->
    durable(erlmcp_session_ha_nif:touch(handle(), Sid, TtlMs));
touch(_Sid, _TtlMs) ->
    erlang:error(badarg).

%% @doc Adds `Delta' to a counter of a session (a PN counter: increments from every region add up).
-spec incr(session_id(), key(), integer()) -> ok | {error, term()}.
incr(Sid, Key, Delta) when is_binary(Sid), is_binary(Key), is_integer(Delta) ->
    durable(erlmcp_session_ha_nif:counter_add(handle(), Sid, Key, Delta));
incr(_Sid, _Key, _Delta) ->
    erlang:error(badarg).

%% @doc A counter's value (0 when never incremented).
-spec counter(session_id(), key()) -> {ok, integer()} | {error, not_found}.
counter(Sid, Key) when is_binary(Sid), is_binary(Key) ->
    case erlmcp_session_ha_nif:get(handle(), Sid) of
        {ok, #{counters := C}} -> {ok, maps:get(Key, C, 0)};
        {error, _} = E -> E
    end;
counter(_Sid, _Key) ->
    erlang:error(badarg).

%% @doc Adds a term to a set of a session (add wins over a concurrent remove).
-spec add_to_set(session_id(), key(), term()) -> ok | {error, term()}.
add_to_set(Sid, Key, Elem) when is_binary(Sid), is_binary(Key) ->
    durable(erlmcp_session_ha_nif:set_add(handle(), Sid, Key, term_to_binary(Elem)));
add_to_set(_Sid, _Key, _Elem) ->
    erlang:error(badarg).

%% @doc Removes a term from a set of a session.
-spec remove_from_set(session_id(), key(), term()) -> ok | {error, term()}.
remove_from_set(Sid, Key, Elem) when is_binary(Sid), is_binary(Key) ->
    durable(erlmcp_session_ha_nif:set_remove(handle(), Sid, Key, term_to_binary(Elem)));
remove_from_set(_Sid, _Key, _Elem) ->
    erlang:error(badarg).

%% @doc The members of a set of a session (errors as `get/1').
-spec set_members(session_id(), key()) -> {ok, [term()]} | {error, not_found | {undecodable, key()} | term()}.
set_members(Sid, Key) when is_binary(Sid), is_binary(Key) ->
    case erlmcp_session_ha_nif:get(handle(), Sid) of
        {ok, #{sets := S}} -> erlmcp_session_ha_term:decode_list(Key, maps:get(Key, S, []));
        {error, _} = E -> E
    end;
set_members(_Sid, _Key) ->
    erlang:error(badarg).

%% @doc Ids of the live sessions, sorted.
-spec session_ids() -> [session_id()].
session_ids() ->
    erlmcp_session_ha_nif:session_ids(handle()).

%% Waits until the change at `Lsn' is durable on this node.
durable({ok, Lsn}) ->
    erlmcp_session_ha_durable:await(handle(), Lsn, ?DURABLE_TIMEOUT);
durable({error, _} = E) ->
    E.

%% The durability an options map asks for (`badarg' for anything else).
durability(Opts) ->
    case maps:to_list(Opts) of
        [] -> durable;
        [{durability, durable}] -> durable;
        [{durability, queued}] -> queued;
        _ -> erlang:error(badarg)
    end.

acknowledge(Result, durable) ->
    durable(Result);
acknowledge({ok, Lsn}, queued) ->
    {ok, {durable_token, Lsn}};
acknowledge({error, _} = E, queued) ->
    E.

%%====================================================================
%% Operations
%%====================================================================

%% @doc The truth about this region in one call: `{ok, Map}' with `replicas' (peer nodes),
%% `lag' (ms, the worst peer), `synced' (every connected peer acked everything), this
%% region's version vector, per peer (by node) connected or not, acked vector, pending ops,
%% lag, last contact and how far its clock runs ahead, the state of the WAL and the
%% snapshots, and `trust': whether messages are authenticated, refused messages per claimed
%% sender and reason, retired replicas and who has yet to confirm them, who blocks
%% tombstone collection, and a wall clock jump held back.
-spec get_replication_status() -> {ok, status()}.
get_replication_status() ->
    gen_server:call(?SERVER, status).

%% @doc {@link force_sync/1} with a 5 s timeout.
-spec force_sync() -> ok | {error, {timeout, [node()]}}.
force_sync() ->
    force_sync(5000).

%% @doc Returns `ok' once every connected peer has acknowledged everything this node holds,
%% or `{error, {timeout, Nodes}}' naming the peers still behind.
-spec force_sync(non_neg_integer()) -> ok | {error, {timeout, [node()]}}.
force_sync(TimeoutMs) when is_integer(TimeoutMs), TimeoutMs >= 0 ->
    gen_server:call(?SERVER, {force_sync, TimeoutMs}, TimeoutMs + 5000);
force_sync(_TimeoutMs) ->
    erlang:error(badarg).

%% @doc Compares this node's digest tree with every connected peer's:
%% `{ok, #{peers => Nodes, sessions => N}}' when every root is equal, else
%% `{error, {inconsistent, #{Node => [SessionId]}}}' naming the differing sessions.
-spec validate_consistency() ->
    {ok, #{peers := [node()], sessions := non_neg_integer()}} |
    {error, {inconsistent,
             #{node() => [session_id()] | unreachable | {unavailable, term()}}}}.
validate_consistency() ->
    erlmcp_session_ha_consistency:validate(handle(), connected_peers()).

%% @doc Exchanges the full state of every differing session with every connected peer, then
%% validates again.
-spec repair() -> {ok, map()} | {error, term()}.
repair() ->
    erlmcp_session_ha_consistency:repair(handle(), connected_peers()).

%% @doc Takes an incremental snapshot now.
-spec snapshot() -> {ok, map()} | {error, term()}.
snapshot() ->
    erlmcp_session_ha_nif:snapshot(handle()).

%% @doc Checks every checksum on disk (read-only): `{ok, Report}' when intact, else
%% `{error, {corrupt, Report}}'.
-spec verify() -> {ok, map()} | {error, term()}.
verify() ->
    erlmcp_session_ha_nif:verify(handle()).

%% @doc Lifts the catch-up fence by hand. A store restored from a backup, rebuilt after
%% damage, or that lost the end of its log refuses reads and writes (`{error, {catching_up,
%% Why}}') until it has caught up with a peer, so that it never serves a session its peers
%% have already ended; when no peer is left to catch up with, an operator lifts the fence
%% and the store serves what it holds.
-spec lift_fence() -> ok | {error, term()}.
lift_fence() ->
    erlmcp_session_ha_nif:lift_fence(handle()).

%% @doc Retires a region that will not come back, for good: `Target' is its node (a peer) or
%% its region name (every member replica of that name). The retirement is logged durably,
%% replicates to every member with the next frames, and once every remaining member has
%% confirmed it, tombstone collection stops waiting for the retired replica (the status's
%% `trust' map shows who has yet to confirm, and who blocks collection). Its frames are
%% refused from then on; a region brought back must start from an empty directory (a new
%% incarnation). `{ok, RetiredIds}', or `{error, not_found}' when no member matches.
-spec retire_region(node() | binary() | atom()) -> {ok, [non_neg_integer()]} | {error, term()}.
retire_region(Target) when is_atom(Target); is_binary(Target) ->
    gen_server:call(?SERVER, {retire, Target}, 30000);
retire_region(_Target) ->
    erlang:error(badarg).

%% @doc Reads the frame keys again from `auth_key_file' (or the cookie): how a key rotation
%% reaches a running node (see the README's Security section).
-spec reload_auth_key() -> ok | {error, term()}.
reload_auth_key() ->
    gen_server:call(?SERVER, reload_auth_key, 30000).

%% @doc Writes a consistent, self-verifying backup of the store to `File'.
-spec backup(file:filename_all()) -> {ok, map()} | {error, term()}.
backup(File) ->
    erlmcp_session_ha_nif:backup(handle(), unicode:characters_to_binary(File)).

%% @doc Peer nodes with their region and whether they are connected.
-spec peers() -> [#{node := node(), id := non_neg_integer() | undefined,
                    region := binary() | undefined, connected := boolean()}].
peers() ->
    gen_server:call(?SERVER, peers).

connected_peers() ->
    [{N, Id} || #{node := N, id := Id, connected := true} <- peers(), Id =/= undefined].

%%====================================================================
%% erlmcp's existing API
%%====================================================================

%% @doc Starts a session for `ClientId': a new random 16-byte id.
-spec start_session(term(), map()) -> {ok, session_id()} | {error, term()}.
start_session(ClientId, SessionData) ->
    erlmcp_session_ha_compat:start_session(ClientId, SessionData).

%% @doc Replaces a session's data (replicated); `{error, session_not_found}' when absent.
-spec replicate_session(session_id(), map()) -> ok | {error, session_not_found | term()}.
replicate_session(Sid, SessionData) ->
    erlmcp_session_ha_compat:replicate_session(Sid, SessionData).

%% @doc The session as erlmcp's session manager knows it.
-spec get_session(session_id()) -> {ok, map()} | {error, not_found}.
get_session(Sid) ->
    erlmcp_session_ha_compat:get_session(Sid).

%% @doc Makes `NewPrimaryNode' the session's primary (this node, a peer, or a connected node
%% still running erlmcp's own module); `{error, session_not_found}' when absent.
-spec failover_session(session_id(), node()) ->
    ok | {error, session_not_found | {unknown_node, node()} | new_primary_store_failed | term()}.
failover_session(Sid, Node) ->
    erlmcp_session_ha_compat:failover_session(Sid, Node).

%% @doc The region currently serving the session, as erlmcp's region atoms: `primary' while
%% the session's primary node is up, else this node's (see `erlmcp_session_ha_compat').
-spec get_active_region(session_id()) ->
    {ok, primary | secondary | tertiary} | {error, not_found | no_active_nodes}.
get_active_region(Sid) ->
    erlmcp_session_ha_compat:get_active_region(Sid).

%% @doc Stores a session given as erlmcp's `#session_info{}' record (as nodes running
%% erlmcp's own module send it to their peers over `rpc') or as a map with the same keys
%% (as `get_session/1' returns it).
-spec store_session(#session_info{} | map()) -> ok | {error, term()}.
store_session(Info) ->
    erlmcp_session_ha_compat:store_session(Info).

%%====================================================================
%% gen_server
%%====================================================================

%% @hidden
init(Opts) ->
    process_flag(trap_exit, true),
    case open_store(Opts) of
        {ok, H, Report} ->
            persistent_term:put(?HANDLE_KEY, H),
            ok = net_kernel:monitor_nodes(true),
            #{id := Id} = erlmcp_session_ha_nif:info(H),
            State = erlmcp_session_ha_peers:new(H, Id, Opts),
            logger:info("erlmcp_session_ha: region ~s open in ~s: ~p",
                        [maps:get(region, Opts), maps:get(data_dir, Opts), Report]),
            self() ! sync,
            {ok, erlmcp_session_ha_peers:hello_all(State)};
        {error, Reason} ->
            {stop, Reason}
    end.

%% Reuses a store left open by a crashed predecessor (same directory and region), so a
%% restart by the supervisor neither loses nor reopens anything.
open_store(#{data_dir := Dir, region := Region} = Opts) ->
    case persistent_term:get(?HANDLE_KEY, undefined) of
        undefined -> open_new(Opts);
        H ->
            try erlmcp_session_ha_nif:info(H) of
                #{dir := Dir, region := Region} ->
                    %% The keys as configured now (a restart is how a rotation may arrive).
                    case erlmcp_session_ha_nif:set_frame_keys(H, erlmcp_session_ha_opts:frame_keys(Opts)) of
                        ok -> {ok, H, #{reused => true}};
                        {error, _} = E -> E
                    end;
                _ -> _ = erlmcp_session_ha_nif:close(H), open_new(Opts)
            catch error:_ -> open_new(Opts)
            end
    end.

open_new(#{data_dir := Dir} = Opts) ->
    ok = filelib:ensure_path(Dir),
    erlmcp_session_ha_nif:open(Dir, erlmcp_session_ha_opts:nif_opts(Opts)).

%% @hidden
handle_call(status, _From, State) ->
    {reply, {ok, erlmcp_session_ha_peers:status(State)}, State};
handle_call(peers, _From, State) ->
    {reply, erlmcp_session_ha_peers:list(State), State};
handle_call({retire, Target}, _From, State) ->
    {Reply, State1} = erlmcp_session_ha_peers:retire(Target, State),
    {reply, Reply, State1};
handle_call(reload_auth_key, _From, State) ->
    {reply, erlmcp_session_ha_peers:reload_keys(State), State};
handle_call({force_sync, TimeoutMs}, From, State) ->
    {noreply, erlmcp_session_ha_peers:force_sync(From, TimeoutMs, State)};
handle_call({digest, Request}, _From, State) ->
    {reply, erlmcp_session_ha_consistency:answer(erlmcp_session_ha_peers:handle_of(State), Request), State};
handle_call({repair_with, Node, Ids}, _From, State) ->
    {reply, ok, erlmcp_session_ha_peers:send_repair(Node, Ids, State)};
handle_call(Request, From, State) when is_tuple(Request), tuple_size(Request) >= 2,
                                       (element(1, Request) =:= start_session orelse
                                        element(1, Request) =:= replicate_session orelse
                                        element(1, Request) =:= failover_session orelse
                                        element(1, Request) =:= get_session orelse
                                        element(1, Request) =:= get_active_region) ->
    %% erlmcp's own module's protocol, from a node still running it: answered by a worker,
    %% since the answer needs this server (status, peers).
    _ = proc_lib:spawn(fun() ->
                               Reply = try erlmcp_session_ha_compat:legacy_call(Request)
                                       catch Class:Reason -> {error, {Class, Reason}}
                                       end,
                               gen_server:reply(From, Reply)
                       end),
    {noreply, State};
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @hidden
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @hidden
handle_info(Msg, State) ->
    {noreply, erlmcp_session_ha_peers:handle_info(Msg, State)}.

%% @hidden
terminate(Reason, State) ->
    case Reason of
        normal -> close(State);
        shutdown -> close(State);
        {shutdown, _} -> close(State);
        _ -> ok %% a crash: the store stays open for the restarted server
    end.

close(State) ->
    H = erlmcp_session_ha_peers:handle_of(State),
    _ = persistent_term:erase(?HANDLE_KEY),
    _ = erlmcp_session_ha_nif:close(H),
    ok.
