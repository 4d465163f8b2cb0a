%%% @doc An erlmcp session backend over the replicated store: the callbacks of erlmcp's
%%% `erlmcp_session_backend' behaviour (`init/1', `store/3', `fetch/2', `delete/2', `list/1',
%%% `cleanup_expired/1'), so erlmcp's session manager can switch to it by configuration.
%%% It does not declare `-behaviour(erlmcp_session_backend)': erlmcp's modules are not
%%% shipped here, and the backend compiles without them.
%%%
%%% A session `#{id, created_at, last_accessed, timeout_ms, metadata}' is stored as the store
%%% session `<<"erlmcp_session/", Id/binary>>' so that concurrent updates in two regions
%%% merge sensibly:
%%% <ul>
%%% <li>`last_accessed' is max-wins: each region writes its own field
%%%     `last_accessed@<region>' and a read takes the largest;</li>
%%% <li>each metadata key is its own last-writer-wins field (`m:' followed by the key's
%%%     external term format), so two regions changing different keys both keep theirs;</li>
%%% <li>expiry is the store's CRDT expiry: every store or fetch extends the session's
%%%     deadline to `last_accessed + timeout_ms' (the longest deadline any region set wins;
%%%     `infinity' never expires). Past it the session reads as absent in every region and
%%%     never comes back; `cleanup_expired/1' runs the sweep that turns passed deadlines into
%%%     replicated ends and reports how many sessions this node ended since the last call.</li>
%%% </ul>
%%% Ids are binaries. The `erlmcp_session_ha' server must be running.
-module(erlmcp_session_replicated).

-export([init/1, store/3, fetch/2, delete/2, list/1, cleanup_expired/1]).

-export_type([state/0, session/0]).

-define(S, erlmcp_session_ha).
-define(PREFIX, "erlmcp_session/").

-type session() :: #{id := binary(), created_at := integer(), last_accessed := integer(),
                     timeout_ms := non_neg_integer() | infinity, metadata := map()}.
-opaque state() :: #{region := binary(), expired_seen := non_neg_integer()}.

%% @doc Checks that the replicated store is running.
-spec init(map()) -> {ok, state()} | {error, term()}.
init(_Opts) ->
    try ?S:get_replication_status() of
        {ok, #{region := Region}} ->
            {ok, #{region => Region, expired_seen => expired_total()}}
    catch
        exit:{noproc, _} -> {error, erlmcp_session_ha_not_running}
    end.

%% @doc Stores (creates or replaces) a session.
-spec store(binary(), session(), state()) -> {ok, state()} | {error, term()}.
store(Id, #{last_accessed := LastAccessed, timeout_ms := Timeout, metadata := Meta} = Session, St)
  when is_binary(Id), is_integer(LastAccessed), is_map(Meta) ->
    Key = key(Id),
    Old = case ?S:get(Key) of {ok, F} -> F; {error, not_found} -> #{} end,
    Fields = maps:merge(
               #{<<"id">> => Id,
                 <<"created_at">> => maps:get(created_at, Session, LastAccessed),
                 <<"timeout_ms">> => Timeout,
                 accessed_key(St) => LastAccessed},
               maps:from_list([{meta_key(K), V} || {K, V} <- maps:to_list(Meta)])),
    Gone = [K || K <- maps:keys(Old), is_meta_key(K), not maps:is_key(K, Fields)],
    Result = lists:foldl(fun(_, {error, _} = E) -> E;
                            (K, ok) -> ?S:delete(Key, K)
                         end, ?S:put(Key, Fields), Gone),
    case Result of
        ok -> extend(Key, max(LastAccessed, last_accessed(Old)), Timeout, St);
        {error, _} = E -> E
    end;
store(_Id, _Session, _St) ->
    {error, bad_session}.

%% Extends the deadline to `LastAccessed + Timeout'; a session already past it is ended.
extend(_Key, _LastAccessed, infinity, St) -> {ok, St};
extend(Key, LastAccessed, Timeout, St) ->
    case LastAccessed + Timeout - erlang:system_time(millisecond) of
        Ttl when Ttl > 0 ->
            case ?S:touch(Key, Ttl) of
                ok -> {ok, St};
                {error, _} = E -> E
            end;
        _ ->
            case ?S:delete(Key) of
                ok -> {ok, St};
                {error, _} = E -> E
            end
    end.

%% @doc Fetches a session and refreshes its `last_accessed' to now (in every region).
-spec fetch(binary(), state()) -> {ok, session(), state()} | {error, not_found | term(), state()}.
fetch(Id, St) when is_binary(Id) ->
    Key = key(Id),
    case ?S:get(Key) of
        {error, not_found} -> {error, not_found, St};
        {ok, F} ->
            Now = erlang:system_time(millisecond),
            Timeout = maps:get(<<"timeout_ms">>, F, infinity),
            case ?S:put(Key, accessed_key(St), Now) of
                ok ->
                    case extend(Key, Now, Timeout, St) of
                        {ok, St1} ->
                            Session = to_session(Id, F),
                            {ok, Session#{last_accessed := max(Now, maps:get(last_accessed, Session))}, St1};
                        {error, ended} -> {error, not_found, St};
                        {error, R} -> {error, R, St}
                    end;
                {error, ended} -> {error, not_found, St};
                {error, R} -> {error, R, St}
            end
    end.

%% @doc Ends a session in every region.
-spec delete(binary(), state()) -> {ok, state()} | {error, term(), state()}.
delete(Id, St) when is_binary(Id) ->
    case ?S:delete(key(Id)) of
        ok -> {ok, St};
        {error, R} -> {error, R, St}
    end.

%% @doc The ids of the live sessions, sorted and unique.
-spec list(state()) -> {ok, [binary()], state()}.
list(St) ->
    Ids = [Id || <<?PREFIX, Id/binary>> <- ?S:session_ids()],
    {ok, lists:usort(Ids), St}.

%% @doc Turns passed deadlines into replicated ends now; returns how many sessions this node
%% ended by expiry since the previous call (the background sweep may have ended some first).
-spec cleanup_expired(state()) -> {ok, non_neg_integer(), state()}.
cleanup_expired(#{expired_seen := Seen} = St) ->
    {ok, _} = erlmcp_session_ha_nif:expire_due(?S:handle()),
    Total = expired_total(),
    {ok, max(0, Total - Seen), St#{expired_seen := Total}}.

expired_total() ->
    maps:get(expired_total, erlmcp_session_ha_nif:status(?S:handle()), 0).

key(Id) -> <<?PREFIX, Id/binary>>.

accessed_key(#{region := Region}) -> <<"last_accessed@", Region/binary>>.

meta_key(K) -> <<"m:", (term_to_binary(K))/binary>>.

is_meta_key(<<"m:", _/binary>>) -> true;
is_meta_key(_) -> false.

last_accessed(Fields) ->
    lists:max([0 | [V || {<<"last_accessed@", _/binary>>, V} <- maps:to_list(Fields), is_integer(V)]]).

to_session(Id, F) ->
    #{id => Id,
      created_at => maps:get(<<"created_at">>, F, 0),
      last_accessed => last_accessed(F),
      timeout_ms => maps:get(<<"timeout_ms">>, F, infinity),
      metadata => maps:from_list([{binary_to_term(K), V} || {<<"m:", K/binary>>, V} <- maps:to_list(F)])}.
