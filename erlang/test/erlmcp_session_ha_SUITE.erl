%%% @doc `erlmcp_session_ha' on one node: the session API, durability across a restart,
%%% the operations (status, snapshot, verify, backup), bad arguments, and starting it exactly
%%% as an unchanged erlmcp child spec does (`start_link/0' from the application environment).
-module(erlmcp_session_ha_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_testcase/2, end_per_testcase/2]).
-export([fields_round_trip_any_term/1, counters_and_sets/1, delete_is_for_good/1,
         touch_expires_everywhere_it_reads/1, writes_survive_a_restart/1,
         status_snapshot_verify_backup/1, bad_arguments_are_refused/1,
         start_link_0_reads_the_application_environment/1,
         region_falls_back_to_the_erlmcp_application/1,
         compat_api_keeps_erlmcp_shapes/1, corrupted_snapshot_is_caught_by_verify/1,
         encrypted_store_needs_its_encryption_key_file/1,
         queued_writes_return_at_once_and_their_token_awaits_the_disk/1]).

-define(S, erlmcp_session_ha).

all() ->
    [fields_round_trip_any_term, counters_and_sets, delete_is_for_good,
     touch_expires_everywhere_it_reads, writes_survive_a_restart, status_snapshot_verify_backup,
     bad_arguments_are_refused, start_link_0_reads_the_application_environment,
     region_falls_back_to_the_erlmcp_application, compat_api_keeps_erlmcp_shapes,
     corrupted_snapshot_is_caught_by_verify, encrypted_store_needs_its_encryption_key_file,
     queued_writes_return_at_once_and_their_token_awaits_the_disk].

dir(Config, Case) ->
    iolist_to_binary(filename:join(?config(priv_dir, Config), atom_to_list(Case))).

init_per_testcase(Case, Config) when Case =:= start_link_0_reads_the_application_environment;
                                     Case =:= region_falls_back_to_the_erlmcp_application;
                                     Case =:= encrypted_store_needs_its_encryption_key_file ->
    [{dir, dir(Config, Case)} | Config];
init_per_testcase(Case, Config) ->
    Dir = dir(Config, Case),
    {ok, _} = erlmcp_session_ha_standalone:start(#{region => <<"us-east-1">>, data_dir => Dir}),
    [{dir, Dir} | Config].

end_per_testcase(_Case, _Config) ->
    ok = erlmcp_session_ha_standalone:stop(),
    [application:unset_env(A, K) || {A, K} <- [{erlmcp_session_ha, region}, {erlmcp_session_ha, data_dir},
                                                {erlmcp, region}]],
    ok.

fields_round_trip_any_term(_Config) ->
    V = #{nested => [1, 2.5, {tuple, <<"bin">>}], pid => self(), ref => make_ref()},
    ok = ?S:put(<<"s1">>, <<"k">>, V),
    ok = ?S:put(<<"s1">>, #{<<"a">> => 1, <<"b">> => "list"}),
    ?assertEqual({ok, V}, ?S:get(<<"s1">>, <<"k">>)),
    ?assertEqual({ok, #{<<"k">> => V, <<"a">> => 1, <<"b">> => "list"}}, ?S:get(<<"s1">>)),
    ok = ?S:delete(<<"s1">>, <<"a">>),
    ?assertEqual({error, not_found}, ?S:get(<<"s1">>, <<"a">>)),
    ?assertEqual({error, not_found}, ?S:get(<<"nope">>)),
    ?assertEqual([<<"s1">>], ?S:session_ids()).

counters_and_sets(_Config) ->
    ok = ?S:incr(<<"s">>, <<"n">>, 5),
    ok = ?S:incr(<<"s">>, <<"n">>, -2),
    ?assertEqual({ok, 3}, ?S:counter(<<"s">>, <<"n">>)),
    ?assertEqual({ok, 0}, ?S:counter(<<"s">>, <<"other">>)),
    ok = ?S:add_to_set(<<"s">>, <<"tags">>, alpha),
    ok = ?S:add_to_set(<<"s">>, <<"tags">>, {beta, 1}),
    ok = ?S:remove_from_set(<<"s">>, <<"tags">>, alpha),
    ?assertEqual({ok, [{beta, 1}]}, ?S:set_members(<<"s">>, <<"tags">>)).

delete_is_for_good(_Config) ->
    ok = ?S:put(<<"s">>, <<"k">>, v),
    ok = ?S:delete(<<"s">>),
    ?assertEqual({error, not_found}, ?S:get(<<"s">>)),
    ?assertEqual({error, ended}, ?S:put(<<"s">>, <<"k">>, again)),
    ?assertEqual({error, ended}, ?S:touch(<<"s">>, 1000)).

touch_expires_everywhere_it_reads(_Config) ->
    ok = ?S:put(<<"s">>, <<"k">>, v),
    ok = ?S:touch(<<"s">>, 100),
    ?assertMatch({ok, _}, ?S:get(<<"s">>)),
    timer:sleep(250),
    ?assertEqual({error, not_found}, ?S:get(<<"s">>)),
    ?assertEqual({error, ended}, ?S:put(<<"s">>, <<"k">>, back)).

writes_survive_a_restart(Config) ->
    [ok = ?S:put(<<"s", (integer_to_binary(I))/binary>>, <<"v">>, I) || I <- lists:seq(1, 100)],
    {ok, _} = ?S:snapshot(),
    [ok = ?S:put(<<"t", (integer_to_binary(I))/binary>>, <<"v">>, I) || I <- lists:seq(1, 50)],
    ok = erlmcp_session_ha_standalone:stop(),
    {ok, _} = erlmcp_session_ha_standalone:start(#{region => <<"us-east-1">>, data_dir => ?config(dir, Config)}),
    ?assertEqual({ok, 100}, ?S:get(<<"s100">>, <<"v">>)),
    ?assertEqual({ok, 50}, ?S:get(<<"t50">>, <<"v">>)),
    ?assertEqual(150, length(?S:session_ids())).

status_snapshot_verify_backup(Config) ->
    ok = ?S:put(<<"s">>, <<"k">>, v),
    {ok, #{replicas := [], lag := 0, synced := true, region := <<"us-east-1">>, wal := _, snapshot := _}} =
        ?S:get_replication_status(),
    {ok, _} = ?S:snapshot(),
    {ok, _} = ?S:verify(),
    File = filename:join(?config(priv_dir, Config), "backup.sha"),
    {ok, #{}} = ?S:backup(File),
    ?assert(filelib:is_regular(File)),
    ?assertMatch({error, _}, ?S:backup(File)), %% never overwrites
    ok = ?S:force_sync(100).

bad_arguments_are_refused(_Config) ->
    ?assertError(badarg, ?S:put(not_a_binary, <<"k">>, v)),
    ?assertError(badarg, ?S:put(<<"s">>, not_a_map)),
    ?assertError(badarg, ?S:get(42)),
    ?assertError(badarg, ?S:touch(<<"s">>, 0)),
    ?assertError(badarg, ?S:incr(<<"s">>, <<"n">>, 1.5)),
    ?assertError(badarg, ?S:force_sync(-1)),
    ?assertEqual({error, invalid_session_id}, ?S:put(<<>>, <<"k">>, v)),
    ?assertEqual({error, invalid_key}, ?S:put(<<"s">>, <<>>, v)),
    ?assertEqual({error, too_large}, ?S:put(<<"s">>, <<"k">>, binary:copy(<<0>>, 1024 * 1024))),
    ?assertEqual({error, invalid_session_id}, ?S:put(binary:copy(<<"x">>, 300), <<"k">>, v)),
    ?assert(is_process_alive(whereis(?S))).

start_link_0_reads_the_application_environment(Config) ->
    ok = application:set_env(erlmcp_session_ha, region, 'eu-central-1'),
    ok = application:set_env(erlmcp_session_ha, data_dir, ?config(dir, Config)),
    %% exactly what an unchanged erlmcp child spec does
    Spec = #{id => erlmcp_session_ha, start => {erlmcp_session_ha, start_link, []}},
    {ok, Sup} = supervisor:start_link(erlmcp_session_ha_SUITE_sup, Spec),
    ok = ?S:put(<<"s">>, <<"k">>, v),
    {ok, #{region := <<"eu-central-1">>}} = ?S:get_replication_status(),
    unlink(Sup),
    exit(Sup, shutdown),
    timer:sleep(100).

region_falls_back_to_the_erlmcp_application(Config) ->
    ok = application:set_env(erlmcp, region, secondary),
    ok = application:set_env(erlmcp_session_ha, data_dir, ?config(dir, Config)),
    {ok, Pid} = ?S:start_link(),
    {ok, #{region := <<"secondary">>}} = ?S:get_replication_status(),
    unlink(Pid),
    ok = ?S:stop().

compat_api_keeps_erlmcp_shapes(_Config) ->
    {ok, Sid} = ?S:start_session(client_1, #{user => alice}),
    ?assertEqual(16, byte_size(Sid)),
    {ok, #{session_id := Sid, primary_node := Node, secondary_nodes := [], session_data := #{user := alice},
           last_updated := T1, replication_status := synced}} = ?S:get_session(Sid),
    ?assertEqual(node(), Node),
    ok = ?S:replicate_session(Sid, #{user => bob}),
    {ok, #{session_data := #{user := bob}, last_updated := T2}} = ?S:get_session(Sid),
    ?assert(T2 >= T1),
    ?assertEqual({error, session_not_found}, ?S:replicate_session(<<"unknown">>, #{})),
    ?assertEqual({error, not_found}, ?S:get_session(<<"unknown">>)),
    %% erlmcp's region atoms: the session's primary (this node) is up
    ?assertEqual({ok, primary}, ?S:get_active_region(Sid)),
    ?assertEqual({error, not_found}, ?S:get_active_region(<<"unknown">>)),
    ?assertEqual({error, {unknown_node, 'nobody@nowhere'}}, ?S:failover_session(Sid, 'nobody@nowhere')),
    ?assertEqual({error, session_not_found}, ?S:failover_session(<<"unknown">>, node())),
    ok = ?S:failover_session(Sid, node()),
    ok = ?S:store_session(#{session_id => <<"stored">>, session_data => #{x => 1}, primary_node => node()}),
    {ok, #{session_data := #{x := 1}}} = ?S:get_session(<<"stored">>),
    %% erlmcp's record, as its nodes send it; an older copy does not undo a newer change
    Rec = {session_info, <<"rec">>, 'erlmcp@elsewhere', [node()], #{y => 2}, 1000, pending},
    ok = ?S:store_session(Rec),
    {ok, #{session_data := #{y := 2}, primary_node := 'erlmcp@elsewhere', last_updated := 1000}} =
        ?S:get_session(<<"rec">>),
    ?assertEqual({ok, secondary}, ?S:get_active_region(<<"rec">>)), %% its primary is down
    ok = ?S:store_session(setelement(5, setelement(6, Rec, 999), #{y => old})),
    {ok, #{session_data := #{y := 2}}} = ?S:get_session(<<"rec">>),
    ?assertEqual({error, bad_session_id}, ?S:store_session(setelement(2, Rec, 42))),
    ?assertEqual({error, bad_session}, ?S:store_session(not_a_session)).

corrupted_snapshot_is_caught_by_verify(Config) ->
    [ok = ?S:put(<<"s", (integer_to_binary(I))/binary>>, <<"v">>, binary:copy(<<I>>, 100)) || I <- lists:seq(1, 200)],
    {ok, #{file := File}} = ?S:snapshot(),
    {ok, #{intact := true}} = ?S:verify(),
    Path = filename:join([?config(dir, Config), "snap", File]),
    {ok, Bin} = file:read_file(Path),
    Half = byte_size(Bin) div 2,
    <<Before:Half/binary, B, After/binary>> = Bin,
    ok = file:write_file(Path, <<Before/binary, (B bxor 1), After/binary>>),
    {error, {corrupt, #{intact := false, problems := [Problem | _]}}} = ?S:verify(),
    ?assertNotEqual(nomatch, binary:match(Problem, File)),
    %% what the store serves comes from memory, checked when it was loaded: still right
    ?assertEqual({ok, binary:copy(<<7>>, 100)}, ?S:get(<<"s7">>, <<"v">>)).

%% The server started with `encryption_key_file' writes its store encrypted (no session
%% value in the clear in any file), serves it after a restart with the key, backs it up
%% encrypted, and refuses to start without the key, saying which key is missing.
encrypted_store_needs_its_encryption_key_file(Config) ->
    Dir = ?config(dir, Config),
    KeyFile = filename:join(?config(priv_dir, Config), "session_ha.key"),
    ok = file:write_file(KeyFile, [<<"# session-ha key\n">>, binary:copy(<<"5c">>, 32), <<"\n">>]),
    Opts = #{region => <<"us-east-1">>, data_dir => Dir, encryption_key_file => KeyFile},
    {ok, _} = erlmcp_session_ha_standalone:start(Opts),
    ok = ?S:put(<<"enc-1">>, <<"token">>, <<"erlang-plaintext-secret">>),
    {ok, _} = ?S:snapshot(),
    ok = ?S:put(<<"enc-2">>, <<"token">>, <<"erlang-plaintext-secret">>),
    {ok, _} = ?S:verify(),
    Backup = filename:join(?config(priv_dir, Config), "encrypted.backup"),
    {ok, #{}} = ?S:backup(Backup),
    ok = erlmcp_session_ha_standalone:stop(),
    Files = [F || F <- filelib:wildcard(binary_to_list(Dir) ++ "/**"), filelib:is_regular(F)] ++ [Backup],
    ?assert(length(Files) > 3),
    [?assertEqual(nomatch, binary:match(element(2, file:read_file(F)), <<"erlang-plaintext-secret">>))
     || F <- Files],
    %% Without the key the store does not open, and nothing on disk changes.
    Before = [{F, file:read_file(F)} || F <- Files],
    NoKey = maps:remove(encryption_key_file, Opts),
    ?assertMatch({error, {missing_key, _}},
                 erlmcp_session_ha_nif:open(Dir, erlmcp_session_ha_opts:nif_opts(element(2, erlmcp_session_ha_opts:normalize(NoKey))))),
    ?assertEqual(Before, [{F, file:read_file(F)} || F <- Files]),
    %% With it, everything is there.
    {ok, _} = erlmcp_session_ha_standalone:start(Opts),
    ?assertEqual({ok, <<"erlang-plaintext-secret">>}, ?S:get(<<"enc-1">>, <<"token">>)),
    ?assertEqual({ok, <<"erlang-plaintext-secret">>}, ?S:get(<<"enc-2">>, <<"token">>)).

%% `#{durability => queued}': the write is applied and visible at once and returns a token;
%% `await_durable/1' on the token returns once it is on disk, and it survives a restart.
%% `durable' (and no option) behave as `put/3'. Bad options and tokens are `badarg'.
queued_writes_return_at_once_and_their_token_awaits_the_disk(Config) ->
    {ok, T1} = ?S:put(<<"q">>, <<"k">>, 1, #{durability => queued}),
    ?assertEqual({ok, 1}, ?S:get(<<"q">>, <<"k">>)),
    {ok, T2} = ?S:put(<<"q">>, #{<<"a">> => 2, <<"b">> => 3}, #{durability => queued}),
    ok = ?S:await_durable(T1),
    ok = ?S:await_durable(T2, 5000),
    ok = ?S:put(<<"d">>, <<"k">>, 4, #{durability => durable}),
    ok = ?S:put(<<"d">>, <<"k2">>, 5, #{}),
    ok = ?S:put(<<"d">>, #{<<"k3">> => 6}, #{}),
    ?assertError(badarg, ?S:put(<<"q">>, <<"k">>, 1, #{durability => sometime})),
    ?assertError(badarg, ?S:put(<<"q">>, <<"k">>, 1, #{other => 1})),
    ?assertError(badarg, ?S:await_durable(not_a_token)),
    ?assertEqual({error, ended}, begin ok = ?S:delete(<<"e">>),
                                       ?S:put(<<"e">>, <<"k">>, 1, #{durability => queued}) end),
    ok = erlmcp_session_ha_standalone:stop(),
    {ok, _} = erlmcp_session_ha_standalone:start(#{region => <<"us-east-1">>, data_dir => ?config(dir, Config)}),
    ?assertEqual({ok, #{<<"k">> => 1, <<"a">> => 2, <<"b">> => 3}}, ?S:get(<<"q">>)),
    ?assertEqual({ok, #{<<"k">> => 4, <<"k2">> => 5, <<"k3">> => 6}}, ?S:get(<<"d">>)).
