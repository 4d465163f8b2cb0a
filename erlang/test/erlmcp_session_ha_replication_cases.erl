%%% @doc The multi-node replication cases, run by more than one suite over different
%%% distribution carriers: `erlmcp_session_ha_multinode_SUITE' (plain TCP) and
%%% `erlmcp_session_ha_tls_SUITE' (`-proto_dist inet_tls'). Every case starts its regions as
%%% OTP `peer' nodes with the suite's `{node_args, Args}' (`erlmcp_session_ha_ct') and, each
%%% time the regions are connected, runs the suite's `{on_connected, Fun}' on them (the TLS
%%% suite checks there that every link is a TLS one).
%%%
%%% Replication to two peers, forwarding when the origin dies, a partition with concurrent
%%% writes that heals, a restarted node that recovers from disk and catches up, a crashed
%%% server restarted by its supervisor, validate/repair naming and fixing exactly the
%%% differing sessions, an end that stays an end, and status per peer. Values are binaries
%%% and integers: values decode with `[safe]', and an atom only the writing node has seen
%%% does not decode on another.
-module(erlmcp_session_ha_replication_cases).

-include_lib("stdlib/include/assert.hrl").

-export([all/0]).
-export([replicates_to_two_peers/1,
         forwards_what_the_dead_origin_left_behind/1,
         partition_with_concurrent_writes_heals_to_one_value/1,
         restarted_node_recovers_from_disk_and_catches_up/1,
         crashed_server_is_restarted_and_loses_nothing/1,
         validate_names_differing_sessions_and_repair_converges/1,
         ended_session_stays_ended_in_every_region/1,
         status_reports_lag_and_sync_per_peer/1]).

-define(CT, erlmcp_session_ha_ct).
-define(S, erlmcp_session_ha).

%% @doc The cases, in the order the suites run them.
-spec all() -> [atom()].
all() ->
    [replicates_to_two_peers,
     forwards_what_the_dead_origin_left_behind,
     partition_with_concurrent_writes_heals_to_one_value,
     restarted_node_recovers_from_disk_and_catches_up,
     crashed_server_is_restarted_and_loses_nothing,
     validate_names_differing_sessions_and_repair_converges,
     ended_session_stays_ended_in_every_region,
     status_reports_lag_and_sync_per_peer].

regions(Config, Extra) ->
    ?CT:start_regions(Config, [<<"us-east-1">>, <<"us-west-2">>, <<"eu-central-1">>], Extra).

sid(I) -> <<"session-", (integer_to_binary(I))/binary>>.

c(R, F, A) -> ?CT:call(R, ?S, F, A).

%% Every region sees every other as a connected peer; then the suite's own check.
wait_peers_connected(Config, Regions) ->
    [?CT:wait_until(fun() -> length([x || #{connected := true} <- c(R, peers, [])]) =:= length(Regions) - 1 end, 10000)
     || R <- Regions],
    on_connected(Config, Regions).

on_connected(Config, Regions) ->
    OnConnected = proplists:get_value(on_connected, Config, fun(_) -> ok end),
    ok = OnConnected(Regions).

%%--------------------------------------------------------------------

-spec replicates_to_two_peers(list()) -> ok.
replicates_to_two_peers(Config) ->
    [A, B, C] = Regions = regions(Config, #{}),
    wait_peers_connected(Config, Regions),
    [ok = c(A, put, [sid(I), #{<<"user">> => {user, I}, <<"n">> => I}]) || I <- lists:seq(1, 200)],
    ok = c(A, incr, [sid(1), <<"hits">>, 5]),
    ok = c(A, force_sync, [10000]),
    [begin
         ?assertEqual({ok, #{<<"user">> => {user, I}, <<"n">> => I}}, c(R, get, [sid(I)])),
         ?assertEqual({ok, 5}, c(R, counter, [sid(1), <<"hits">>]))
     end || R <- [B, C], I <- [1, 100, 200]],
    {ok, _} = c(B, validate_consistency, []),
    ok.

-spec forwards_what_the_dead_origin_left_behind(list()) -> ok.
forwards_what_the_dead_origin_left_behind(Config) ->
    [A, B, C] = Regions = regions(Config, #{}),
    wait_peers_connected(Config, Regions),
    %% A reaches only B; then A dies for good. B must hand A's writes on to C.
    ?CT:partition(A, C),
    [ok = c(A, put, [sid(I), <<"v">>, I]) || I <- lists:seq(1, 50)],
    ok = c(A, force_sync, [10000]), %% acked by B, its only connected peer
    ?CT:stop_region(A),
    ?CT:wait_until(fun() -> c(C, get, [sid(50), <<"v">>]) =:= {ok, 50} end, 10000),
    [?assertEqual({ok, I}, c(C, get, [sid(I), <<"v">>])) || I <- lists:seq(1, 50)],
    ok = c(B, force_sync, [10000]),
    {ok, #{peers := [_]}} = c(C, validate_consistency, []),
    ok.

-spec partition_with_concurrent_writes_heals_to_one_value(list()) -> ok.
partition_with_concurrent_writes_heals_to_one_value(Config) ->
    [A, B, C] = Regions = regions(Config, #{}),
    wait_peers_connected(Config, Regions),
    ok = c(A, put, [sid(1), <<"k">>, <<"base">>]),
    ok = c(A, force_sync, [10000]),
    %% B and C lose each other and A; both write the same field and their own fields.
    ?CT:partition(B, C), ?CT:partition(A, B), ?CT:partition(A, C),
    ok = c(B, put, [sid(1), <<"k">>, <<"from_b">>]),
    ok = c(B, put, [sid(1), <<"b">>, 1]),
    ok = c(C, put, [sid(1), <<"k">>, <<"from_c">>]),
    ok = c(C, put, [sid(1), <<"c">>, 1]),
    ok = c(C, incr, [sid(1), <<"n">>, 2]),
    ok = c(B, incr, [sid(1), <<"n">>, 3]),
    ?CT:heal(B, C), ?CT:heal(A, B), ?CT:heal(A, C),
    wait_peers_connected(Config, Regions),
    [ok = c(R, force_sync, [10000]) || R <- Regions],
    {ok, Map} = c(A, get, [sid(1)]),
    [?assertEqual({ok, Map}, c(R, get, [sid(1)])) || R <- [B, C]],
    ?assertMatch(#{<<"b">> := 1, <<"c">> := 1}, Map),
    ?assert(lists:member(maps:get(<<"k">>, Map), [<<"from_b">>, <<"from_c">>])),
    [?assertEqual({ok, 5}, c(R, counter, [sid(1), <<"n">>])) || R <- Regions],
    [{ok, _} = c(R, validate_consistency, []) || R <- Regions],
    ok.

-spec restarted_node_recovers_from_disk_and_catches_up(list()) -> ok.
restarted_node_recovers_from_disk_and_catches_up(Config) ->
    [A, B, C] = regions(Config, #{}),
    wait_peers_connected(Config, [A, B, C]),
    [ok = c(C, put, [sid(I), <<"own">>, I]) || I <- lists:seq(1, 20)],
    ok = c(C, force_sync, [10000]),
    ?CT:stop_region(C),
    [ok = c(A, put, [sid(I), <<"while_down">>, I]) || I <- lists:seq(21, 60)],
    C2 = ?CT:start_region(Config, <<"eu-central-1">>, #{}),
    ?CT:connect_all([A, B, C2]),
    wait_peers_connected(Config, [A, B, C2]),
    %% Stopped uncleanly: C comes back as a new incarnation, fenced until it has caught up
    %% with a member (reads refused as catching_up meanwhile), then serves what it had.
    ?CT:wait_until(fun() -> c(C2, get, [sid(1), <<"own">>]) =:= {ok, 1} end, 10000),
    [?assertEqual({ok, I}, c(C2, get, [sid(I), <<"own">>])) || I <- lists:seq(1, 20)],
    ?CT:wait_until(fun() -> c(C2, get, [sid(60), <<"while_down">>]) =:= {ok, 60} end, 10000),
    ok = c(A, force_sync, [10000]),
    {ok, _} = c(C2, validate_consistency, []),
    ok.

-spec crashed_server_is_restarted_and_loses_nothing(list()) -> ok.
crashed_server_is_restarted_and_loses_nothing(Config) ->
    [A, B] = Regions = ?CT:start_regions(Config, [<<"us-east-1">>, <<"us-west-2">>], #{}),
    wait_peers_connected(Config, Regions),
    [ok = c(A, put, [sid(I), <<"v">>, I]) || I <- lists:seq(1, 30)],
    Pid = ?CT:call(A, erlang, whereis, [?S]),
    true = ?CT:call(A, erlang, exit, [Pid, kill]),
    ?CT:wait_until(fun() ->
                           New = ?CT:call(A, erlang, whereis, [?S]),
                           is_pid(New) andalso New =/= Pid
                   end, 10000),
    [?assertEqual({ok, I}, c(A, get, [sid(I), <<"v">>])) || I <- lists:seq(1, 30)],
    ok = c(A, put, [sid(31), <<"v">>, 31]),
    wait_peers_connected(Config, Regions),
    ok = c(A, force_sync, [10000]),
    ?assertEqual({ok, 31}, c(B, get, [sid(31), <<"v">>])),
    ok.

-spec validate_names_differing_sessions_and_repair_converges(list()) -> ok.
validate_names_differing_sessions_and_repair_converges(Config) ->
    %% Replication effectively off (one frame an hour): only repair can converge them.
    [A, B] = ?CT:start_regions(Config, [<<"us-east-1">>, <<"us-west-2">>],
                                         #{sync_interval_ms => 3600000}),
    ?CT:wait_until(fun() -> length(c(A, peers, [])) =:= 1 andalso length(c(B, peers, [])) =:= 1 end, 10000),
    on_connected(Config, [A, B]),
    ok = c(A, put, [sid(1), <<"k">>, <<"a">>]),
    ok = c(B, put, [sid(2), <<"k">>, <<"b">>]),
    %% validate first pushes what A holds (a best-effort sync); what only B holds differs
    {error, {inconsistent, Diffs}} = c(A, validate_consistency, []),
    ?assertEqual([sid(2)], maps:get(maps:get(node, B), Diffs)),
    {ok, _} = c(A, repair, []),
    ?assertEqual({ok, <<"a">>}, c(B, get, [sid(1), <<"k">>])),
    ?assertEqual({ok, <<"b">>}, c(A, get, [sid(2), <<"k">>])),
    {ok, _} = c(B, validate_consistency, []),
    ok.

-spec ended_session_stays_ended_in_every_region(list()) -> ok.
ended_session_stays_ended_in_every_region(Config) ->
    [A, B, C] = Regions = regions(Config, #{}),
    wait_peers_connected(Config, Regions),
    ok = c(A, put, [sid(1), <<"k">>, v]),
    ok = c(A, force_sync, [10000]),
    ?CT:partition(A, B), ?CT:partition(B, C),
    ok = c(A, delete, [sid(1)]),
    ok = c(B, put, [sid(1), <<"late">>, write]), %% concurrent with the delete
    ?CT:heal(A, B), ?CT:heal(B, C),
    wait_peers_connected(Config, Regions),
    [ok = c(R, force_sync, [10000]) || R <- Regions],
    [?assertEqual({error, not_found}, c(R, get, [sid(1)])) || R <- Regions],
    [?assertEqual({error, ended}, c(R, put, [sid(1), <<"k">>, again])) || R <- Regions],
    ok.

-spec status_reports_lag_and_sync_per_peer(list()) -> ok.
status_reports_lag_and_sync_per_peer(Config) ->
    [A, B, C] = Regions = regions(Config, #{}),
    wait_peers_connected(Config, Regions),
    ?CT:partition(A, C),
    [ok = c(A, put, [sid(I), <<"v">>, I]) || I <- lists:seq(1, 10)],
    ok = c(A, force_sync, [10000]), %% every *connected* peer (B) has it
    {ok, S} = c(A, get_replication_status, []),
    #{replicas := Replicas, synced := false, peers := Peers} = S,
    ?assertEqual(lists:sort([maps:get(node, B), maps:get(node, C)]), Replicas),
    #{connected := false, pending_ops := Pending} = maps:get(maps:get(node, C), Peers),
    ?assert(Pending >= 10),
    ?CT:heal(A, C),
    wait_peers_connected(Config, Regions),
    ok = c(A, force_sync, [10000]),
    {ok, #{synced := true, lag := 0}} = c(A, get_replication_status, []),
    ok.
