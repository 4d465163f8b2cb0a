%%% @doc The `erlmcp_session_backend' contract of `erlmcp_session_replicated': on one node
%%% (store/fetch, last_accessed refreshed by one queued write, delete, list sorted and
%%% unique, cleanup_expired counting swept sessions and sessions already expired when stored,
%%% sessions with any subset of the documented keys, bad input refused with a typed error,
%%% the state handed back unchanged, 50 concurrent processes) and across three region nodes
%%% (stored in one region and fetched in another, a fetch's refresh seen in every region,
%%% deleted everywhere, expiry honoured everywhere, concurrent updates merged).
-module(erlmcp_session_replicated_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, init_per_group/2, end_per_group/2, init_per_testcase/2, end_per_testcase/2]).
-export([store_then_fetch/1, fetch_refreshes_last_accessed/1, delete_removes/1,
         list_is_sorted_and_unique/1, cleanup_expired_counts_expired_sessions/1,
         fifty_concurrent_processes/1, stored_in_one_region_fetched_in_another/1,
         deleted_in_one_region_is_gone_everywhere/1, expiry_in_one_region_is_honoured_in_all/1,
         concurrent_metadata_updates_merge/1,
         cleanup_expired_counts_sessions_expired_when_stored/1, any_subset_of_the_keys_is_a_session/1,
         bad_sessions_are_refused_with_a_typed_error/1, fetch_refreshes_with_one_queued_write/1,
         fetch_refresh_is_seen_in_every_region/1]).

-define(B, erlmcp_session_replicated).
-define(CT, erlmcp_session_ha_ct).

all() -> [{group, one_node}, {group, three_regions}].

groups() ->
    [{one_node, [], [store_then_fetch, fetch_refreshes_last_accessed, delete_removes,
                     list_is_sorted_and_unique, cleanup_expired_counts_expired_sessions,
                     cleanup_expired_counts_sessions_expired_when_stored, any_subset_of_the_keys_is_a_session,
                     bad_sessions_are_refused_with_a_typed_error, fetch_refreshes_with_one_queued_write,
                     fifty_concurrent_processes]},
     {three_regions, [], [stored_in_one_region_fetched_in_another, deleted_in_one_region_is_gone_everywhere,
                          expiry_in_one_region_is_honoured_in_all, concurrent_metadata_updates_merge,
                          fetch_refresh_is_seen_in_every_region]}].

init_per_group(_, Config) -> Config.
end_per_group(_, _Config) -> ok.

init_per_testcase(Case, Config) ->
    case lists:member(Case, element(3, lists:keyfind(one_node, 1, groups()))) of
        true ->
            Dir = filename:join(?config(priv_dir, Config), atom_to_list(Case)),
            {ok, _} = erlmcp_session_ha_standalone:start(#{region => <<"us-east-1">>, data_dir => Dir}),
            {ok, St} = ?B:init(#{}),
            [{backend, St} | Config];
        false ->
            ?CT:case_dir(Case, Config)
    end.

end_per_testcase(_Case, _Config) ->
    erlmcp_session_ha_standalone:stop().

now_ms() -> erlang:system_time(millisecond).

session(Id, Timeout) ->
    #{id => Id, created_at => now_ms(), last_accessed => now_ms(), timeout_ms => Timeout,
      metadata => #{user => <<"alice">>, <<"tier">> => gold}}.

store_then_fetch(Config) ->
    St = ?config(backend, Config),
    S = session(<<"a">>, infinity),
    {ok, St1} = ?B:store(<<"a">>, S, St),
    {ok, Got, _} = ?B:fetch(<<"a">>, St1),
    ?assertEqual(maps:without([last_accessed], S), maps:without([last_accessed], Got)),
    {error, not_found, _} = ?B:fetch(<<"missing">>, St1),
    %% a store with fewer metadata keys drops the others
    {ok, _} = ?B:store(<<"a">>, S#{metadata := #{user => <<"bob">>}}, St1),
    {ok, #{metadata := #{user := <<"bob">>} = M}, _} = ?B:fetch(<<"a">>, St1),
    ?assertEqual(1, map_size(M)).

fetch_refreshes_last_accessed(Config) ->
    St = ?config(backend, Config),
    Old = now_ms() - 5000,
    {ok, _} = ?B:store(<<"a">>, (session(<<"a">>, 60000))#{last_accessed := Old}, St),
    {ok, #{last_accessed := T1}, _} = ?B:fetch(<<"a">>, St),
    ?assert(T1 >= now_ms() - 1000),
    timer:sleep(20),
    {ok, #{last_accessed := T2}, _} = ?B:fetch(<<"a">>, St),
    ?assert(T2 > T1).

delete_removes(Config) ->
    St = ?config(backend, Config),
    {ok, _} = ?B:store(<<"a">>, session(<<"a">>, infinity), St),
    {ok, _} = ?B:delete(<<"a">>, St),
    {error, not_found, _} = ?B:fetch(<<"a">>, St),
    {ok, [], _} = ?B:list(St).

list_is_sorted_and_unique(Config) ->
    St = ?config(backend, Config),
    Ids = [<<"c">>, <<"a">>, <<"b">>, <<"a">>],
    [{ok, _} = ?B:store(Id, session(Id, infinity), St) || Id <- Ids],
    ok = erlmcp_session_ha:put(<<"not-a-backend-session">>, <<"k">>, v),
    ?assertEqual({ok, [<<"a">>, <<"b">>, <<"c">>], St}, ?B:list(St)).

cleanup_expired_counts_expired_sessions(Config) ->
    St = ?config(backend, Config),
    [{ok, _} = ?B:store(Id, session(Id, 100), St) || Id <- [<<"x1">>, <<"x2">>, <<"x3">>]],
    {ok, _} = ?B:store(<<"keep">>, session(<<"keep">>, infinity), St),
    timer:sleep(300),
    {ok, 3, St1} = ?B:cleanup_expired(St),
    {ok, 0, _} = ?B:cleanup_expired(St1),
    ?assertEqual({ok, [<<"keep">>], St1}, ?B:list(St1)).

%% erlmcp's own backend suite: sessions stored already past their deadline are counted by
%% the next cleanup, which is given the state the stores handed back (the same one).
cleanup_expired_counts_sessions_expired_when_stored(Config) ->
    St = ?config(backend, Config),
    Now = now_ms(),
    Sessions = [{<<"expired_1">>, #{id => <<"expired_1">>, created_at => Now - 10000, last_accessed => Now - 5000,
                                    timeout_ms => 1000, metadata => #{}}},
                {<<"valid_1">>, #{id => <<"valid_1">>, created_at => Now - 10000, last_accessed => Now - 500,
                                  timeout_ms => 10000, metadata => #{}}},
                {<<"expired_2">>, #{id => <<"expired_2">>, created_at => Now - 10000, last_accessed => Now - 3000,
                                    timeout_ms => 2000, metadata => #{}}}],
    [?assertEqual({ok, St}, ?B:store(Id, S, St)) || {Id, S} <- Sessions],
    ?assertEqual({ok, 2, St}, ?B:cleanup_expired(St)),
    ?assertEqual({error, not_found, St}, ?B:fetch(<<"expired_1">>, St)),
    ?assertEqual({error, not_found, St}, ?B:fetch(<<"expired_2">>, St)),
    ?assertMatch({ok, #{id := <<"valid_1">>}, St}, ?B:fetch(<<"valid_1">>, St)),
    ?assertEqual({ok, 0, St}, ?B:cleanup_expired(St)),
    ?assertEqual({ok, [<<"valid_1">>], St}, ?B:list(St)).

any_subset_of_the_keys_is_a_session(Config) ->
    St = ?config(backend, Config),
    %% erlmcp's clustering suite stores `#{data => test}'
    {ok, St} = ?B:store(<<"d">>, #{data => test}, St),
    {ok, #{id := <<"d">>, data := test, metadata := M0, timeout_ms := infinity, last_accessed := L0,
           created_at := C0}, St} = ?B:fetch(<<"d">>, St),
    ?assertEqual(#{}, M0),
    ?assert(is_integer(L0) andalso is_integer(C0)),
    {ok, St} = ?B:store(<<"empty">>, #{}, St),
    {ok, #{id := <<"empty">>, timeout_ms := infinity}, St} = ?B:fetch(<<"empty">>, St),
    %% only some documented keys, unknown ones kept as they are; a store drops what it lacks
    {ok, St} = ?B:store(<<"p">>, #{timeout_ms => 60000, {custom, key} => [1, 2], extra => x}, St),
    {ok, #{timeout_ms := 60000, metadata := #{}, {custom, key} := [1, 2], extra := x}, St} = ?B:fetch(<<"p">>, St),
    {ok, St} = ?B:store(<<"p">>, #{metadata => #{m => 1}, extra => y}, St),
    {ok, P, St} = ?B:fetch(<<"p">>, St),
    ?assertMatch(#{metadata := #{m := 1}, extra := y, timeout_ms := infinity}, P),
    ?assertNot(maps:is_key({custom, key}, P)),
    ?assertEqual({ok, [<<"d">>, <<"empty">>, <<"p">>], St}, ?B:list(St)).

bad_sessions_are_refused_with_a_typed_error(Config) ->
    St = ?config(backend, Config),
    ?assertEqual({error, bad_session}, ?B:store(<<"a">>, not_a_map, St)),
    ?assertEqual({error, bad_session_id}, ?B:store(not_a_binary, #{}, St)),
    ?assertEqual({error, bad_session_id}, ?B:store(<<>>, #{}, St)),
    ?assertEqual({error, {bad_field, timeout_ms}}, ?B:store(<<"a">>, #{timeout_ms => -1}, St)),
    ?assertEqual({error, {bad_field, timeout_ms}}, ?B:store(<<"a">>, #{timeout_ms => forever}, St)),
    ?assertEqual({error, {bad_field, metadata}}, ?B:store(<<"a">>, #{metadata => [a]}, St)),
    ?assertEqual({error, {bad_field, last_accessed}}, ?B:store(<<"a">>, #{last_accessed => now}, St)),
    ?assertEqual({error, {bad_field, created_at}}, ?B:store(<<"a">>, #{created_at => 1.5}, St)),
    ?assertEqual({error, not_found, St}, ?B:fetch(42, St)),
    ?assertEqual({error, bad_session_id, St}, ?B:delete(42, St)),
    ?assertEqual({ok, [], St}, ?B:list(St)).

%% A fetch writes exactly one record to the log (the store hands out consecutive sequence
%% numbers: a probe write before and after it is two apart), for either kind of session.
fetch_refreshes_with_one_queued_write(Config) ->
    St = ?config(backend, Config),
    H = erlmcp_session_ha:handle(),
    {ok, St} = ?B:store(<<"t">>, (session(<<"t">>, 60000))#{last_accessed := now_ms() - 5000}, St),
    {ok, St} = ?B:store(<<"i">>, session(<<"i">>, infinity), St),
    Probe = fun() -> {ok, Lsn} = erlmcp_session_ha_nif:put(H, <<"probe">>, <<"k">>, <<"v">>), Lsn end,
    [begin
         Before = Probe(),
         {ok, #{last_accessed := T}, St} = ?B:fetch(Id, St),
         ?assertEqual(Before + 2, Probe()),
         ?assert(T >= now_ms() - 1000)
     end || Id <- [<<"t">>, <<"i">>]],
    %% the refreshed deadline and access time are what the next read sees
    {ok, #{expires_at := At}} = erlmcp_session_ha_nif:get(H, <<"erlmcp_session/t">>),
    ?assert(At >= now_ms() + 60000 - 2000),
    ok.

fifty_concurrent_processes(Config) ->
    St = ?config(backend, Config),
    Parent = self(),
    Pids = [spawn_link(fun() ->
                               Id = <<"p", (integer_to_binary(N))/binary>>,
                               R = [begin
                                        {ok, _} = ?B:store(Id, (session(Id, 60000))#{metadata := #{n => I}}, St),
                                        {ok, #{metadata := #{n := I}}, _} = ?B:fetch(Id, St),
                                        ok
                                    end || I <- lists:seq(1, 10)],
                               Parent ! {self(), R}
                       end) || N <- lists:seq(1, 50)],
    [receive {P, R} -> ?assertEqual(lists:duplicate(10, ok), R) end || P <- Pids],
    {ok, Ids, _} = ?B:list(St),
    ?assertEqual(50, length(Ids)).

%%--------------------------------------------------------------------

regions(Config) ->
    Rs = ?CT:start_regions(Config, [<<"primary">>, <<"secondary">>, <<"tertiary">>], #{}),
    [?CT:wait_until(fun() -> length([x || #{connected := true} <- ?CT:call(R, erlmcp_session_ha, peers, [])]) =:= 2 end, 10000)
     || R <- Rs],
    %% Values decode with [safe]: every node has the atoms the sessions carry, as loading
    %% erlmcp's code makes them on every node of a release (this module is loaded here only).
    [_ = ?CT:call(R, erlang, binary_to_atom, [A, utf8]) || R <- Rs, A <- [<<"gold">>, <<"user">>, <<"a">>, <<"b">>]],
    Rs.

b(R, F, A) ->
    {ok, St} = ?CT:call(R, ?B, init, [#{}]),
    ?CT:call(R, ?B, F, A ++ [St]).

sync(R) -> ok = ?CT:call(R, erlmcp_session_ha, force_sync, [10000]).

stored_in_one_region_fetched_in_another(Config) ->
    [A, B, C] = regions(Config),
    {ok, _} = b(A, store, [<<"s">>, session(<<"s">>, 60000)]),
    sync(A),
    {ok, #{metadata := #{user := <<"alice">>}}, _} = b(B, fetch, [<<"s">>]),
    {ok, #{metadata := #{user := <<"alice">>}}, _} = b(C, fetch, [<<"s">>]).

deleted_in_one_region_is_gone_everywhere(Config) ->
    [A, B, C] = regions(Config),
    {ok, _} = b(A, store, [<<"s">>, session(<<"s">>, infinity)]),
    sync(A),
    {ok, _} = b(B, delete, [<<"s">>]),
    sync(B),
    [{error, not_found, _} = b(R, fetch, [<<"s">>]) || R <- [A, B, C]],
    [{ok, [], _} = b(R, list, []) || R <- [A, B, C]].

%% The timeout leaves the store, the syncs and the remote fetch seconds to finish on a
%% loaded machine; the wait then starts from the fetch, which moved the deadline.
expiry_in_one_region_is_honoured_in_all(Config) ->
    [A, B, C] = regions(Config),
    Timeout = 3000,
    {ok, _} = b(A, store, [<<"s">>, session(<<"s">>, Timeout)]),
    sync(A),
    {ok, #{last_accessed := Fetched}, _} = b(C, fetch, [<<"s">>]),
    sync(C),
    timer:sleep(max(0, Fetched + Timeout + 300 - now_ms())),
    %% nobody fetched it since: past its deadline in every region, whoever sweeps first
    [{error, not_found, _} = b(R, fetch, [<<"s">>]) || R <- [A, B, C]],
    {ok, _, _} = b(A, cleanup_expired, []),
    sync(A),
    [{ok, [], _} = b(R, list, []) || R <- [A, B, C]].

fetch_refresh_is_seen_in_every_region(Config) ->
    [A, B, C] = regions(Config),
    Old = now_ms() - 30000,
    [{ok, _} = b(A, store, [Id, (session(Id, T))#{last_accessed := Old}]) || {Id, T} <- [{<<"t">>, 60000}, {<<"i">>, infinity}]],
    sync(A),
    Fetched = now_ms(),
    [{ok, _, _} = b(B, fetch, [Id]) || Id <- [<<"t">>, <<"i">>]],
    sync(B),
    %% seen in C without C's own refresh counting: C reads through the store
    [?assert(last_accessed_in(C, Id) >= Fetched) || Id <- [<<"t">>, <<"i">>]],
    ok.

%% last_accessed as a region's store holds it, without a fetch (which would refresh it).
last_accessed_in(R, Id) ->
    {ok, #{fields := F, expires_at := At}} = ?CT:call(R, erlmcp_session_ha_nif, get,
                                                      [?CT:call(R, erlmcp_session_ha, handle, []), <<"erlmcp_session/", Id/binary>>]),
    Fields = maps:map(fun(_, V) -> binary_to_term(V) end, F),
    FromFields = [V || {<<"last_accessed@", _/binary>>, V} <- maps:to_list(Fields)],
    FromDeadline = case {At, maps:get(<<"timeout_ms">>, Fields)} of
                       {undefined, infinity} -> [];
                       {_, T} -> [At - T]
                   end,
    lists:max(FromFields ++ FromDeadline).

concurrent_metadata_updates_merge(Config) ->
    [A, B, C] = regions(Config),
    S = session(<<"s">>, 60000),
    {ok, _} = b(A, store, [<<"s">>, S]),
    sync(A),
    ?CT:partition(A, B), ?CT:partition(B, C), ?CT:partition(A, C),
    LaterA = now_ms() + 10000,
    {ok, _} = b(A, store, [<<"s">>, S#{last_accessed := LaterA, metadata := #{user => <<"alice">>, <<"tier">> => gold, a => 1}}]),
    {ok, _} = b(B, store, [<<"s">>, S#{metadata := #{user => <<"alice">>, <<"tier">> => gold, b => 2}}]),
    ?CT:heal(A, B), ?CT:heal(B, C), ?CT:heal(A, C),
    timer:sleep(200),
    [sync(R) || R <- [A, B, C]],
    {ok, Got, _} = b(C, fetch, [<<"s">>]),
    #{metadata := #{a := 1, b := 2, user := <<"alice">>}, last_accessed := Last} = Got,
    ?assert(Last >= LaterA), %% max-wins, whichever region wrote it
    ok.
