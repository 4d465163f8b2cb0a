%%% @doc `erlmcp_session_replicated:import/2,3' against the storage of erlmcp's three
%%% backends, laid out as they lay it out: a real DETS file (`{Id, Session}' objects; closed,
%%% then open), a real Mnesia table (disc_copies in a temporary directory, records
%%% `{Table, Id, Session, LastAccessed}') and a named ETS table; plus any other backend
%%% through its `list/1' and `fetch/2' callbacks (this suite is one). Every session is
%%% copied with progress reported, expired ones are not, the final count check holds,
%%% a rerun changes nothing, a session ended here is not brought back, and bad sessions
%%% make the import incomplete, naming them.
-module(erlmcp_session_replicated_import_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_testcase/2, end_per_testcase/2]).
-export([imports_a_dets_file/1, imports_an_open_dets_table/1, imports_a_mnesia_disc_table/1,
         imports_an_ets_table/1, rerun_changes_nothing_and_ended_stays_ended/1,
         bad_sessions_make_it_incomplete/1, imports_through_backend_callbacks/1,
         bad_sources_are_refused/1]).
%% This suite as an erlmcp session backend (for imports_through_backend_callbacks).
-export([list/1, fetch/2]).

-define(B, erlmcp_session_replicated).

all() ->
    [imports_a_dets_file, imports_an_open_dets_table, imports_a_mnesia_disc_table,
     imports_an_ets_table, rerun_changes_nothing_and_ended_stays_ended,
     bad_sessions_make_it_incomplete, imports_through_backend_callbacks, bad_sources_are_refused].

init_per_testcase(Case, Config) ->
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(Case)),
    ok = filelib:ensure_path(Dir),
    {ok, _} = erlmcp_session_ha_standalone:start(#{region => <<"us-east-1">>,
                                                   data_dir => filename:join(Dir, "store")}),
    [{dir, Dir} | Config].

end_per_testcase(imports_a_mnesia_disc_table, _Config) ->
    stopped = mnesia:stop(),
    ok = mnesia:delete_schema([node()]),
    ok = application:unset_env(mnesia, dir),
    erlmcp_session_ha_standalone:stop();
end_per_testcase(_Case, _Config) ->
    _ = ets:info(erlmcp_sessions_ets) =/= undefined andalso ets:delete(erlmcp_sessions_ets),
    erlmcp_session_ha_standalone:stop().

now_ms() -> erlang:system_time(millisecond).

id(I) -> <<"session-", (integer_to_binary(I))/binary>>.

%% `Live' sessions that have time left, `Expired' ones past their deadline by erlmcp's rule.
sessions(Live, Expired) ->
    Now = now_ms(),
    [{id(I), #{id => id(I), created_at => Now - 1000, last_accessed => Now - 1000,
               timeout_ms => case I rem 2 of 0 -> 3600000; 1 -> infinity end,
               metadata => #{n => I, user => <<"u">>}}} || I <- lists:seq(1, Live)] ++
    [{id(I), #{id => id(I), created_at => Now - 10000, last_accessed => Now - 5000, timeout_ms => 1000,
               metadata => #{}}} || I <- lists:seq(Live + 1, Live + Expired)].

%% Every live one is here, with its metadata and timeout; no expired one is.
assert_imported(Live, Expired) ->
    {ok, St} = ?B:init(#{}),
    [begin
         {ok, S, _} = ?B:fetch(id(I), St),
         ?assertMatch(#{id := _, metadata := #{n := I, user := <<"u">>}}, S),
         ?assertEqual(case I rem 2 of 0 -> 3600000; 1 -> infinity end, maps:get(timeout_ms, S))
     end || I <- lists:seq(1, Live)],
    ?assertEqual({ok, lists:usort([id(I) || I <- lists:seq(1, Live)]), St}, ?B:list(St)),
    [?assertEqual({error, not_found, St}, ?B:fetch(id(I), St)) || I <- lists:seq(Live + 1, Live + Expired)],
    ok.

progress() ->
    Self = self(),
    fun(Done, Total) -> Self ! {progress, Done, Total} end.

progress_reports() ->
    receive {progress, D, T} -> [{D, T} | progress_reports()] after 0 -> [] end.

%%--------------------------------------------------------------------

imports_a_dets_file(Config) ->
    File = filename:join(?config(dir, Config), "erlmcp_sessions.dets"),
    {ok, T} = dets:open_file(erlmcp_sessions_dets, [{file, File}, {type, set}]),
    ok = dets:insert(T, sessions(600, 7)),
    ok = dets:close(T),
    %% the documented one-liner, on a node where the DETS table is not open
    {ok, Report} = ?B:import(erlmcp_session_dets, #{file_path => File}, #{progress => progress(), progress_every => 250}),
    ?assertMatch(#{source := erlmcp_session_dets, read := 607, copied := 600, already_here := 0, expired := 7,
                   ended_here := 0, refused := [], present := 600, missing := []}, Report),
    %% after each chunk that completes another 250, then at the end, never going back
    Reports = progress_reports(),
    ?assertEqual({607, 607}, lists:last(Reports)),
    ?assertEqual([607], lists:usort([T1 || {_, T1} <- Reports])),
    Done = [D || {D, _} <- Reports],
    ?assertEqual(Done, lists:usort(Done)),
    ?assertMatch([D1, D2, 607] when D1 >= 250 andalso D2 >= 500, Done),
    assert_imported(600, 7),
    %% read-only: the file is as it was
    {ok, T2} = dets:open_file(erlmcp_sessions_dets, [{file, File}, {access, read}]),
    ?assertEqual(607, dets:info(T2, size)),
    ok = dets:close(T2).

imports_an_open_dets_table(Config) ->
    File = filename:join(?config(dir, Config), "open.dets"),
    {ok, T} = dets:open_file(erlmcp_sessions_dets, [{file, File}, {type, set}]),
    ok = dets:insert(T, sessions(30, 2)),
    try
        {ok, #{read := 32, copied := 30, expired := 2, present := 30}} =
            ?B:import(erlmcp_session_dets, #{table_name => erlmcp_sessions_dets, file_path => File}),
        assert_imported(30, 2)
    after
        ok = dets:close(T)
    end.

imports_a_mnesia_disc_table(Config) ->
    ok = application:set_env(mnesia, dir, filename:join(?config(dir, Config), "mnesia")),
    ok = mnesia:create_schema([node()]),
    ok = mnesia:start(),
    %% the table as erlmcp's Mnesia backend creates and writes it
    {atomic, ok} = mnesia:create_table(erlmcp_session, [{attributes, [session_id, session_data, last_accessed]},
                                                        {disc_copies, [node()]}, {type, set}]),
    ?assertEqual(disc_copies, mnesia:table_info(erlmcp_session, storage_type)),
    {atomic, ok} = mnesia:transaction(
                     fun() -> [ok = mnesia:write({erlmcp_session, Id, S, now_ms()}) || {Id, S} <- sessions(300, 5)], ok end),
    {ok, #{read := 305, copied := 300, expired := 5, present := 300, missing := []}} =
        ?B:import(erlmcp_session_mnesia, #{table_name => erlmcp_session}, #{progress => progress()}),
    ?assertEqual([{305, 305}], progress_reports()),
    assert_imported(300, 5),
    ?assertEqual(305, mnesia:table_info(erlmcp_session, size)).

imports_an_ets_table(_Config) ->
    T = ets:new(erlmcp_sessions_ets, [ordered_set, public, named_table]),
    true = ets:insert(T, sessions(1000, 3)),
    {ok, #{read := 1003, copied := 1000, expired := 3, present := 1000}} =
        ?B:import(erlmcp_session_ets, #{table_name => erlmcp_sessions_ets}),
    assert_imported(1000, 3).

rerun_changes_nothing_and_ended_stays_ended(_Config) ->
    T = ets:new(erlmcp_sessions_ets, [set, public, named_table]),
    true = ets:insert(T, sessions(50, 0)),
    {ok, #{copied := 50}} = ?B:import(erlmcp_session_ets, #{}),
    {ok, St} = ?B:init(#{}),
    %% changed and ended here after the first import
    {ok, S1, _} = ?B:fetch(id(1), St),
    {ok, _} = ?B:store(id(1), S1#{metadata := #{n => 1, user => <<"u">>, changed => here}}, St),
    {ok, _} = ?B:delete(id(2), St),
    {ok, #{read := 50, copied := 0, already_here := 49, ended_here := 1, present := 49, missing := []}} =
        ?B:import(erlmcp_session_ets, #{}),
    ?assertMatch({ok, #{metadata := #{changed := here}}, _}, ?B:fetch(id(1), St)),
    ?assertEqual({error, not_found, St}, ?B:fetch(id(2), St)),
    {ok, Ids, _} = ?B:list(St),
    ?assertEqual(49, length(Ids)).

bad_sessions_make_it_incomplete(_Config) ->
    T = ets:new(erlmcp_sessions_ets, [set, public, named_table]),
    true = ets:insert(T, sessions(10, 0) ++ [{not_a_binary, #{}}, {<<"no-map">>, [1]},
                                             {<<"bad-timeout">>, #{timeout_ms => -5}}]),
    {error, {incomplete, Report}} = ?B:import(erlmcp_session_ets, #{}),
    ?assertMatch(#{read := 13, copied := 10, present := 10, missing := []}, Report),
    ?assertEqual(lists:sort([{not_a_binary, bad_session_id}, {<<"no-map">>, bad_session},
                             {<<"bad-timeout">>, {bad_field, timeout_ms}}]),
                 lists:sort(maps:get(refused, Report))),
    assert_imported(10, 0).

%% This suite as a backend whose storage the import cannot read directly.
list(Sessions) -> {ok, [Id || {Id, _} <- Sessions], Sessions}.
fetch(Id, Sessions) ->
    case lists:keyfind(Id, 1, Sessions) of
        {Id, S} -> {ok, S, Sessions};
        false -> {error, not_found, Sessions}
    end.

imports_through_backend_callbacks(_Config) ->
    {ok, #{source := ?MODULE, read := 40, copied := 40, present := 40}} = ?B:import(?MODULE, sessions(40, 0)),
    assert_imported(40, 0).

bad_sources_are_refused(Config) ->
    ?assertMatch({error, {bad_source, {no_ets_table, nope}}}, ?B:import(erlmcp_session_ets, #{table_name => nope})),
    ?assertMatch({error, {bad_source, {no_dets_file, _}}},
                 ?B:import(erlmcp_session_dets, #{file_path => filename:join(?config(dir, Config), "none.dets")})),
    ?assertMatch({error, {bad_source, {mnesia, erlmcp_session, _}}}, ?B:import(erlmcp_session_mnesia, #{})),
    ?assertMatch({error, {bad_source, {no_such_module, not_a_backend}}}, ?B:import(no_such_module, #{})),
    ?assertMatch({error, {bad_options, _}}, ?B:import(erlmcp_session_ets, #{}, #{progress_every => 0})),
    ?assertMatch({error, {bad_options, _}}, ?B:import(erlmcp_session_ets, #{}, #{unknown => 1})),
    ok.
