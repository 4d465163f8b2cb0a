%%% @doc The `erlmcp_session_backend' contract of `erlmcp_session_replicated': on one node
%%% (store/fetch, last_accessed refreshed, delete, list sorted and unique, cleanup_expired
%%% count, 50 concurrent processes) and across three region nodes (stored in one region and
%%% fetched in another, deleted everywhere, expiry honoured everywhere).
-module(erlmcp_session_replicated_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, init_per_group/2, end_per_group/2, init_per_testcase/2, end_per_testcase/2]).
-export([store_then_fetch/1, fetch_refreshes_last_accessed/1, delete_removes/1,
         list_is_sorted_and_unique/1, cleanup_expired_counts_expired_sessions/1,
         fifty_concurrent_processes/1, stored_in_one_region_fetched_in_another/1,
         deleted_in_one_region_is_gone_everywhere/1, expiry_in_one_region_is_honoured_in_all/1,
         concurrent_metadata_updates_merge/1]).

-define(B, erlmcp_session_replicated).
-define(CT, erlmcp_session_ha_ct).

all() -> [{group, one_node}, {group, three_regions}].

groups() ->
    [{one_node, [], [store_then_fetch, fetch_refreshes_last_accessed, delete_removes,
                     list_is_sorted_and_unique, cleanup_expired_counts_expired_sessions,
                     fifty_concurrent_processes]},
     {three_regions, [], [stored_in_one_region_fetched_in_another, deleted_in_one_region_is_gone_everywhere,
                          expiry_in_one_region_is_honoured_in_all, concurrent_metadata_updates_merge]}].

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

expiry_in_one_region_is_honoured_in_all(Config) ->
    [A, B, C] = regions(Config),
    {ok, _} = b(A, store, [<<"s">>, session(<<"s">>, 200)]),
    sync(A),
    {ok, _, _} = b(C, fetch, [<<"s">>]),
    sync(C),
    timer:sleep(500),
    %% nobody fetched it since: past its deadline in every region, whoever sweeps first
    [{error, not_found, _} = b(R, fetch, [<<"s">>]) || R <- [A, B, C]],
    {ok, _, _} = b(A, cleanup_expired, []),
    sync(A),
    [{ok, [], _} = b(R, list, []) || R <- [A, B, C]].

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
