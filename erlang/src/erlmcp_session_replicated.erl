%%% @doc An erlmcp session backend over the replicated store: the callbacks of erlmcp's
%%% `erlmcp_session_backend' behaviour (`init/1', `store/3', `fetch/2', `delete/2', `list/1',
%%% `cleanup_expired/1'), so erlmcp's session manager can switch to it by configuration, and
%%% {@link import/2} to copy the sessions of erlmcp's ETS, DETS or Mnesia backend into it.
%%% It does not declare `-behaviour(erlmcp_session_backend)': erlmcp's modules are not
%%% shipped here, and the backend compiles without them.
%%%
%%% A session is a map; every key is optional. The documented ones are `id', `created_at'
%%% (integer, default `last_accessed'), `last_accessed' (integer ms, default now),
%%% `timeout_ms' (non-negative integer or `infinity', the default: never expires) and
%%% `metadata' (map, default `#{}'); any other key is kept as it is. {@link fetch/2}
%%% returns the session with every documented key filled in. It is stored as the store
%%% session `<<"erlmcp_session/", Id/binary>>' so that concurrent updates in two regions
%%% merge sensibly:
%%% <ul>
%%% <li>`last_accessed' is max-wins: each region writes its own field
%%%     `last_accessed@<region>', and the store's expiry deadline (`last_accessed +
%%%     timeout_ms', the longest any region set wins) carries it too; a read takes the
%%%     largest (never later than now when taken from the deadline);</li>
%%% <li>each metadata key is its own last-writer-wins field (`m:' followed by the key's
%%%     external term format), each other key too (`u:' followed by it), so two regions
%%%     changing different keys both keep theirs; a store drops the keys it no longer has;</li>
%%% <li>expiry is the store's CRDT expiry: a store sets the deadline to
%%%     `last_accessed + timeout_ms', a fetch extends it to now + `timeout_ms'. Past it the
%%%     session reads as absent in every region and never comes back.</li>
%%% </ul>
%%% A store is durable here when it returns. A fetch refreshes `last_accessed' with one
%%% write that it queues for the log without waiting for it (losing it in a crash only
%%% makes the session look older by one access, which max-wins makes harmless).
%%%
%%% `cleanup_expired/1' ends the sessions whose deadline has passed now and reports how
%%% many sessions expired on this node since the previous call on this node: those the
%%% store's sweep ended here, plus those that were already past their deadline when stored
%%% (a store ends such a session at once). Ids are binaries. The `erlmcp_session_ha'
%%% server must be running.
-module(erlmcp_session_replicated).

-export([init/1, store/3, fetch/2, delete/2, list/1, cleanup_expired/1]).
-export([import/2, import/3]).
-export([is_stored/1]).

-export_type([state/0, session/0]).

-define(S, erlmcp_session_ha).
-define(N, erlmcp_session_ha_nif).
-define(PREFIX, "erlmcp_session/").
%% Slots of the node's expiry counters (see counts/0).
-define(ENDED_AT_STORE, 1).
-define(REPORTED, 2).
-define(BASE, 3).

-type session() :: #{id => term(), created_at => integer(), last_accessed => integer(),
                     timeout_ms => non_neg_integer() | infinity, metadata => map(),
                     term() => term()}.
-opaque state() :: #{region := binary()}.

%% @doc Checks that the replicated store is running. The state is the same in and out of
%% every callback; what `cleanup_expired/1' counts is kept per node (and open store).
-spec init(map()) -> {ok, state()} | {error, erlmcp_session_ha_not_running}.
init(_Opts) ->
    try ?S:get_replication_status() of
        {ok, #{region := Region}} ->
            _ = counts(),
            {ok, #{region => Region}}
    catch
        exit:{noproc, _} -> {error, erlmcp_session_ha_not_running}
    end.

%% @doc Stores (creates or replaces) a session. A session already past its deadline is
%% ended at once (and counted by the next {@link cleanup_expired/1}).
-spec store(binary(), session(), state()) ->
    {ok, state()} | {error, bad_session_id | bad_session | {bad_field, atom()} | term()}.
store(Id, _Session, _St) when not is_binary(Id); Id =:= <<>> ->
    {error, bad_session_id};
store(Id, Session, St) when is_map(Session) ->
    case validate(Session) of
        ok -> store_valid(Id, Session, St);
        {error, _} = E -> E
    end;
store(_Id, _Session, _St) ->
    {error, bad_session}.

validate(Session) ->
    Checks = [{created_at, fun erlang:is_integer/1},
              {last_accessed, fun erlang:is_integer/1},
              {timeout_ms, fun(T) -> T =:= infinity orelse (is_integer(T) andalso T >= 0) end},
              {metadata, fun erlang:is_map/1}],
    Bad = [K || {K, Ok} <- Checks, V <- maps:values(maps:with([K], Session)), not Ok(V)],
    case Bad of
        [] -> ok;
        [K | _] -> {error, {bad_field, K}}
    end.

store_valid(Id, Session, St) ->
    Key = key(Id),
    Now = now_ms(),
    LastAccessed = maps:get(last_accessed, Session, Now),
    Timeout = maps:get(timeout_ms, Session, infinity),
    case read(Key) of
        {error, _} = E -> E;
        Found ->
            {Old, OldAccessed} = case Found of
                                     {ok, F, At} -> {F, last_accessed(F, At, Now)};
                                     not_found -> {#{}, 0}
                                 end,
            Newest = max(LastAccessed, OldAccessed),
            case Timeout =/= infinity andalso Now - Newest > Timeout of
                true -> end_expired(Key, St);
                false -> write(Key, Id, Session, LastAccessed, Timeout, Old, Newest, Now, St)
            end
    end.

%% erlmcp's backends treat a session as expired once `now - last_accessed > timeout_ms'.
end_expired(Key, St) ->
    case ?S:delete(Key) of
        ok -> atomics:add(counts(), ?ENDED_AT_STORE, 1), {ok, St};
        {error, ended} -> {ok, St};
        {error, _} = E -> E
    end.

write(Key, Id, Session, LastAccessed, Timeout, Old, Newest, Now, St) ->
    Meta = maps:get(metadata, Session, #{}),
    Other = maps:without([id, created_at, last_accessed, timeout_ms, metadata], Session),
    Fields = maps:merge(
               #{<<"id">> => maps:get(id, Session, Id),
                 <<"created_at">> => maps:get(created_at, Session, LastAccessed),
                 <<"timeout_ms">> => Timeout,
                 accessed_key(St) => LastAccessed},
               maps:from_list([{meta_key(K), V} || {K, V} <- maps:to_list(Meta)] ++
                              [{other_key(K), V} || {K, V} <- maps:to_list(Other)])),
    Gone = [K || K <- maps:keys(Old), is_kept_key(K), not maps:is_key(K, Fields)],
    Result = lists:foldl(fun(_, {error, _} = E) -> E;
                            (K, ok) -> ?S:delete(Key, K)
                         end, ?S:put(Key, Fields), Gone),
    case {Result, Timeout} of
        {ok, infinity} -> {ok, St};
        {ok, _} ->
            %% at least 1 ms: `now - last_accessed = timeout_ms' is not yet expired
            case ?S:touch(Key, max(1, Newest + Timeout - Now)) of
                ok -> {ok, St};
                {error, _} = E -> E
            end;
        {{error, _} = E, _} -> E
    end.

%% @doc Fetches a session and refreshes its `last_accessed' to now (in every region): one
%% write, queued for the log, not waited for.
-spec fetch(binary(), state()) -> {ok, session(), state()} | {error, not_found | term(), state()}.
fetch(Id, St) when is_binary(Id), Id =/= <<>> ->
    Key = key(Id),
    case read(Key) of
        {ok, F, ExpiresAt} ->
            H = ?S:handle(),
            Now = now_ms(),
            Refresh = case maps:get(<<"timeout_ms">>, F, infinity) of
                          infinity -> ?N:put(H, Key, accessed_key(St), term_to_binary(Now));
                          Timeout -> ?N:touch(H, Key, max(1, Timeout))
                      end,
            case Refresh of
                {ok, _Lsn} ->
                    S = to_session(Id, F, ExpiresAt, Now),
                    {ok, S#{last_accessed := max(Now, maps:get(last_accessed, S))}, St};
                {error, ended} -> {error, not_found, St};
                {error, R} -> {error, R, St}
            end;
        not_found -> {error, not_found, St};
        {error, R} -> {error, R, St}
    end;
fetch(_Id, St) ->
    {error, not_found, St}.

%% @doc Ends a session in every region.
-spec delete(binary(), state()) -> {ok, state()} | {error, term(), state()}.
delete(Id, St) when is_binary(Id), Id =/= <<>> ->
    case ?S:delete(key(Id)) of
        ok -> {ok, St};
        {error, R} -> {error, R, St}
    end;
delete(_Id, St) ->
    {error, bad_session_id, St}.

%% @doc The ids of the live sessions, sorted and unique.
-spec list(state()) -> {ok, [binary()], state()}.
list(St) ->
    Ids = [Id || <<?PREFIX, Id/binary>> <- ?S:session_ids()],
    {ok, lists:usort(Ids), St}.

%% @doc Ends the sessions whose deadline has passed now (each end replicates); returns how
%% many sessions expired on this node since the previous call (see the module doc).
-spec cleanup_expired(state()) -> {ok, non_neg_integer(), state()}.
cleanup_expired(St) ->
    {ok, _} = ?N:expire_due(?S:handle()),
    C = counts(),
    Total = max(0, expired_total() - atomics:get(C, ?BASE)) + atomics:get(C, ?ENDED_AT_STORE),
    {ok, take_unreported(C, Total), St}.

%% The node's expiry counters for the open store: sessions ended by a store because they
%% were already expired, how many expiries were reported, and the store's sweep count
%% when they were made. Kept in persistent_term under the store's handle (a state may travel
%% between processes and nodes; a counter reference that leaves its node stops working).
counts() ->
    H = ?S:handle(),
    case persistent_term:get({?MODULE, H}, undefined) of
        undefined ->
            C = atomics:new(3, [{signed, false}]),
            ok = atomics:put(C, ?BASE, expired_total()),
            ok = persistent_term:put({?MODULE, H}, C),
            C;
        C -> C
    end.

%% Marks everything up to `Total' as reported; returns how much was not yet (a concurrent
%% caller that got there first takes its share, never the same one twice).
take_unreported(C, Total) ->
    Reported = atomics:get(C, ?REPORTED),
    if Total =< Reported -> 0;
       true ->
            case atomics:compare_exchange(C, ?REPORTED, Reported, Total) of
                ok -> Total - Reported;
                _ -> take_unreported(C, Total)
            end
    end.

%% @doc {@link import/3} with progress logged every 1000 sessions.
-spec import(module(), term()) ->
    {ok, erlmcp_session_replicated_import:report()} |
    {error, {incomplete, erlmcp_session_replicated_import:report()} | term()}.
import(FromBackend, FromState) ->
    import(FromBackend, FromState, #{}).

%% @doc Copies every session of another erlmcp session backend into this one, given that
%% backend's module and its state (what its `init/1' returned, or a map with the same
%% keys): see `erlmcp_session_replicated_import' for what is read, what is skipped and
%% the report. Idempotent: a session already here is left as it is.
-spec import(module(), term(), erlmcp_session_replicated_import:options()) ->
    {ok, erlmcp_session_replicated_import:report()} |
    {error, {incomplete, erlmcp_session_replicated_import:report()} | term()}.
import(FromBackend, FromState, Opts) ->
    erlmcp_session_replicated_import:run(FromBackend, FromState, Opts).

%%--------------------------------------------------------------------

expired_total() ->
    maps:get(expired_total, ?N:status(?S:handle()), 0).

now_ms() -> erlang:system_time(millisecond).

key(Id) -> <<?PREFIX, Id/binary>>.

accessed_key(#{region := Region}) -> <<"last_accessed@", Region/binary>>.

meta_key(K) -> <<"m:", (term_to_binary(K))/binary>>.

other_key(K) -> <<"u:", (term_to_binary(K))/binary>>.

is_kept_key(<<"m:", _/binary>>) -> true;
is_kept_key(<<"u:", _/binary>>) -> true;
is_kept_key(_) -> false.

%% A stored session's fields (decoded safely, its kept keys too) and deadline.
read(Key) ->
    case ?N:get(?S:handle(), Key) of
        {ok, #{fields := Raw, expires_at := ExpiresAt}} ->
            case erlmcp_session_ha_term:decode_values(Raw) of
                {ok, F} ->
                    case [K || K <- maps:keys(F), is_kept_key(K), kept_term(K) =:= undecodable] of
                        [] -> {ok, F, ExpiresAt};
                        [K | _] -> {error, {undecodable, K}}
                    end;
                {error, _} = E -> E
            end;
        {error, not_found} -> not_found;
        {error, _} = E -> E
    end.

%% The term a kept key (`m:' or `u:' and an encoded term) names, as `{ok, Term}';
%% `undecodable' if it does not decode.
kept_term(<<_:2/binary, K/binary>>) ->
    case erlmcp_session_ha_term:decode(K) of
        {ok, _} = Ok -> Ok;
        {error, undecodable} -> undecodable
    end.

%% The term of a kept key that `read/1' found decodable.
kept_key_term(K) ->
    {ok, T} = kept_term(K),
    T.

%% The largest `last_accessed' any region wrote, or that the deadline implies (a fetch
%% moves only the deadline), never later than now when taken from the deadline.
last_accessed(F, ExpiresAt, Now) ->
    FromDeadline = case {ExpiresAt, maps:get(<<"timeout_ms">>, F, infinity)} of
                       {At, T} when is_integer(At), is_integer(T) -> [min(At - T, Now)];
                       _ -> []
                   end,
    lists:max([0 | FromDeadline] ++
              [V || {<<"last_accessed@", _/binary>>, V} <- maps:to_list(F), is_integer(V)]).

to_session(Id, F, ExpiresAt, Now) ->
    Others = maps:from_list([{kept_key_term(K), V} || {<<"u:", _/binary>> = K, V} <- maps:to_list(F)]),
    maps:merge(Others,
               #{id => maps:get(<<"id">>, F, Id),
                 created_at => maps:get(<<"created_at">>, F, 0),
                 last_accessed => last_accessed(F, ExpiresAt, Now),
                 timeout_ms => maps:get(<<"timeout_ms">>, F, infinity),
                 metadata => maps:from_list([{kept_key_term(K), V} || {<<"m:", _/binary>> = K, V} <- maps:to_list(F)])}).

%% @hidden For the import: whether a session is here (live), without refreshing it.
-spec is_stored(binary()) -> boolean().
is_stored(Id) ->
    case ?S:get(key(Id), <<"created_at">>) of
        {ok, _} -> true;
        {error, _} -> false
    end.
