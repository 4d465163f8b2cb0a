%%% @doc A live switch-over from erlmcp's own ETS-based `erlmcp_session_ha' to this library,
%%% on a real mixed cluster of OTP `peer' nodes: one node runs a test double of erlmcp's
%%% module (erlmcp_session_ha_switchover_SUITE_data/erlmcp_session_ha.erl, whose header lists
%%% the shapes assumed), one runs this library. Sessions started, changed and failed over on
%%% either side reach the other in the other's shapes; erlmcp's `gen_server' calls are
%%% answered with its records and region atoms; then the erlmcp node is switched over (its
%%% sessions copied, the node restarted under the same name running this library) and no
%%% session is lost. Also: the first node's table saved with `ets:tab2file/2' and copied
%%% from the file, idempotently.
-module(erlmcp_session_ha_switchover_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("erlmcp_session_ha.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([sessions_flow_both_ways_in_a_mixed_cluster/1,
         erlmcp_calls_are_answered_in_its_shapes/1,
         switching_the_erlmcp_node_over_loses_no_session/1,
         first_node_is_copied_from_its_saved_table/1]).

-define(CT, erlmcp_session_ha_ct).
-define(S, erlmcp_session_ha).

all() ->
    [sessions_flow_both_ways_in_a_mixed_cluster,
     erlmcp_calls_are_answered_in_its_shapes,
     switching_the_erlmcp_node_over_loses_no_session,
     first_node_is_copied_from_its_saved_table].

init_per_suite(Config) ->
    case is_alive() of
        true ->
            Src = filename:join(?config(data_dir, Config), "erlmcp_session_ha.erl"),
            {ok, erlmcp_session_ha, Bin} = compile:file(Src, [binary, return_errors]),
            [{double, Bin} | Config];
        false -> {skip, "needs a distributed node: run rebar3 ct --sname NAME"}
    end.

end_per_suite(_Config) ->
    ok.

init_per_testcase(first_node_is_copied_from_its_saved_table = Case, Config) ->
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(Case)),
    {ok, _} = erlmcp_session_ha_standalone:start(#{region => <<"primary">>, data_dir => Dir}),
    Config;
init_per_testcase(Case, Config) ->
    ?CT:case_dir(Case, Config).

end_per_testcase(first_node_is_copied_from_its_saved_table, _Config) ->
    _ = ets:info(erlmcp_session_ha) =/= undefined andalso ets:delete(erlmcp_session_ha),
    erlmcp_session_ha_standalone:stop();
end_per_testcase(_Case, _Config) ->
    ok.

%%--------------------------------------------------------------------
%% The mixed cluster: R runs this library in the region `secondary'; E runs the double of
%% erlmcp's module as the primary, with R as its secondary.

mixed(Config) ->
    R = ?CT:start_region(Config, <<"secondary">>, #{}),
    RNode = maps:get(node, R),
    E = start_erlmcp_node(Config, [{secondary_nodes, [RNode]}, {node_regions, #{RNode => secondary}}]),
    true = e(E, net_kernel, connect_node, [RNode]),
    ENode = maps:get(node, E),
    ?CT:wait_until(fun() -> r(R, erlmcp_session_ha_compat, legacy_peers, []) =:= [ENode] end, 10000),
    {E, R}.

%% A node running the double of erlmcp's module (and not this library: its code is not on
%% the node's path).
start_erlmcp_node(Config, Env) ->
    {ok, Peer, Node} = peer:start_link(#{name => peer:random_name("erlmcp"), connection => standard_io,
                                         args => ?CT:node_args()}),
    {module, erlmcp_session_ha} = peer:call(Peer, code, load_binary,
                                            [erlmcp_session_ha, "erlmcp_session_ha.erl", ?config(double, Config)]),
    [ok = peer:call(Peer, application, set_env, [erlmcp, K, V]) || {K, V} <- [{region, primary} | Env]],
    {ok, _} = peer:call(Peer, erlmcp_session_ha, start_link, []),
    #{peer => Peer, node => Node}.

e(#{peer := P}, M, F, A) -> peer:call(P, M, F, A, 30000).
r(R, M, F, A) -> ?CT:call(R, M, F, A).

%% The double's view of a session: {Data, PrimaryNode}.
on_e(E, Sid) ->
    case e(E, ?S, get_session, [Sid]) of
        {ok, #session_info{session_data = D, primary_node = P}} -> {D, P};
        {error, not_found} -> not_found
    end.

%% This library's view of a session: {Data, PrimaryNode}.
on_r(R, Sid) ->
    case r(R, ?S, get_session, [Sid]) of
        {ok, #{session_data := D, primary_node := P}} -> {D, P};
        {error, not_found} -> not_found
    end.

%%--------------------------------------------------------------------

sessions_flow_both_ways_in_a_mixed_cluster(Config) ->
    {E, R} = mixed(Config),
    #{node := ENode} = E,
    #{node := RNode} = R,
    %% started on erlmcp's node: replicated to ours (asynchronously, as erlmcp does)
    {ok, S1} = e(E, ?S, start_session, [client_e, #{from => e}]),
    ?CT:wait_until(fun() -> on_r(R, S1) =:= {#{from => e}, ENode} end, 10000),
    %% started on ours: stored on erlmcp's node before the call returns
    {ok, S2} = r(R, ?S, start_session, [client_r, #{from => r}]),
    ?assertEqual({#{from => r}, RNode}, on_e(E, S2)),
    %% changed on either side, whichever node is the session's primary
    ok = e(E, ?S, replicate_session, [S1, #{from => e, n => 1}]),
    ?assertEqual({#{from => e, n => 1}, ENode}, on_r(R, S1)),
    ok = e(E, ?S, replicate_session, [S2, #{from => r, n => 2}]),
    ?assertEqual({#{from => r, n => 2}, RNode}, on_r(R, S2)),
    ok = r(R, ?S, replicate_session, [S1, #{from => e, n => 3}]),
    ?assertEqual({#{from => e, n => 3}, ENode}, on_e(E, S1)),
    %% failed over in both directions
    ok = e(E, ?S, failover_session, [S1, RNode]),
    ?assertEqual({#{from => e, n => 3}, RNode}, on_r(R, S1)),
    ok = r(R, ?S, failover_session, [S2, ENode]),
    ?assertEqual({#{from => r, n => 2}, ENode}, on_e(E, S2)),
    ?assertEqual({#{from => r, n => 2}, ENode}, on_r(R, S2)),
    ok.

erlmcp_calls_are_answered_in_its_shapes(Config) ->
    {E, R} = mixed(Config),
    #{node := ENode} = E,
    #{node := RNode} = R,
    {ok, Sid} = e(E, ?S, start_session, [client_e, #{k => v}]),
    ?CT:wait_until(fun() -> on_r(R, Sid) =/= not_found end, 10000),
    Call = fun(Req) -> e(E, gen_server, call, [{?S, RNode}, Req]) end,
    %% erlmcp's record, with the session's primary and this library's view of its peers
    {ok, #session_info{session_id = Sid, primary_node = ENode, session_data = #{k := v},
                       replication_status = Status}} = Call({get_session, Sid}),
    ?assert(lists:member(Status, [synced, syncing, pending, failed])),
    ?assertEqual({error, not_found}, Call({get_session, <<"nobody">>})),
    %% region atoms: the primary (E) is up
    ?assertEqual({ok, primary}, Call({get_active_region, Sid})),
    ?assertEqual({ok, primary}, r(R, ?S, get_active_region, [Sid])),
    ?assertEqual({error, not_found}, Call({get_active_region, <<"nobody">>})),
    %% erlmcp's error shapes
    ?assertEqual({error, session_not_found}, Call({replicate_session, <<"nobody">>, #{}})),
    ?assertEqual({error, session_not_found}, Call({failover_session, <<"nobody">>, RNode})),
    ?assertEqual({error, session_not_found}, r(R, ?S, failover_session, [<<"nobody">>, RNode])),
    %% a session started through the protocol is erlmcp's shape too, and reaches E
    {ok, New} = Call({start_session, client_x, #{x => 1}}),
    ?assertEqual(16, byte_size(New)),
    ?assertEqual({#{x => 1}, RNode}, on_e(E, New)),
    ?assertEqual({error, unknown_call}, Call(something_else)),
    ?assertEqual({error, unknown_call}, Call({get_session, 42})),     %% bad input: a typed error
    ?assertEqual({error, unknown_call}, Call({start_session, c, not_a_map})),
    %% E gone: the primary is down, this node's region (`secondary') serves the session
    ok = peer:stop(maps:get(peer, E)),
    ?CT:wait_until(fun() -> r(R, ?S, get_active_region, [Sid]) =:= {ok, secondary} end, 10000),
    ok.

switching_the_erlmcp_node_over_loses_no_session(Config) ->
    {E, R} = mixed(Config),
    #{node := ENode} = E,
    #{node := RNode} = R,
    FromE = [begin {ok, S} = e(E, ?S, start_session, [c, #{e => I}]), {S, #{e => I}} end || I <- lists:seq(1, 20)],
    FromR = [begin {ok, S} = r(R, ?S, start_session, [c, #{r => I}]), {S, #{r => I}} end || I <- lists:seq(1, 20)],
    ?CT:wait_until(fun() -> [S || {S, _} <- FromE, on_r(R, S) =:= not_found] =:= [] end, 10000),
    %% erlmcp's node cut off: what it starts now stays on it (its replication fails)
    true = e(E, erlang, disconnect_node, [RNode]),
    OnlyOnE = [begin {ok, S} = e(E, ?S, start_session, [c, #{only_e => I}]), {S, #{only_e => I}} end
               || I <- lists:seq(1, 10)],
    ?CT:wait_until(fun() ->
                           [failed] =:= lists:usort([St || {S, _} <- OnlyOnE,
                                                           {ok, #session_info{replication_status = St}}
                                                               <- [e(E, ?S, get_session, [S])]])
                   end, 10000),
    true = e(E, net_kernel, connect_node, [RNode]),
    ?assertEqual([not_found], lists:usort([on_r(R, S) || {S, _} <- OnlyOnE])),
    All = FromE ++ FromR ++ OnlyOnE,
    ?assertEqual([], [S || {S, D} <- All, on_e(E, S) =/= {D, node_of(S, FromR, RNode, ENode)}]),
    %% 1. copy what erlmcp's node holds, on a node of this library
    {ok, #{read := 50, stored := 50, present := 50, missing := []}} =
        r(R, erlmcp_session_ha_switchover, copy_sessions, [ENode]),
    %% 2. restart it (same node name) with this library instead of erlmcp's module
    [Name, _Host] = string:split(atom_to_list(ENode), "@"),
    ok = peer:stop(maps:get(peer, E)),
    E2 = ?CT:start_region(Config, <<"primary">>, Name, #{}),
    ?assertEqual(ENode, maps:get(node, E2)),
    %% Values decode with [safe]: the restarted node has the atoms the sessions carry, as
    %% erlmcp's loaded code would make them (this module is loaded on the test node only).
    [_ = r(N, erlang, binary_to_atom, [A, utf8]) || N <- [E2, R], A <- [<<"e">>, <<"r">>, <<"only_e">>]],
    true = r(R, net_kernel, connect_node, [ENode]),
    ?CT:wait_until(fun() -> [N || #{node := N, connected := true} <- r(R, ?S, peers, [])] =:= [ENode] end, 10000),
    ok = r(R, ?S, force_sync, [10000]),
    %% 3. every session, wherever it was started, is on both nodes
    [?assertEqual({D, node_of(S, FromR, RNode, ENode)}, on_r(E2, S)) || {S, D} <- All],
    [?assertEqual({D, node_of(S, FromR, RNode, ENode)}, on_r(R, S)) || {S, D} <- All],
    {ok, #{sessions := 50}} = r(E2, ?S, validate_consistency, []),
    ?assertEqual([], r(R, erlmcp_session_ha_compat, legacy_peers, [])),
    ok.

node_of(S, FromR, RNode, ENode) ->
    case lists:keymember(S, 1, FromR) of
        true -> RNode;
        false -> ENode
    end.

first_node_is_copied_from_its_saved_table(Config) ->
    %% What erlmcp's module holds on the first node switched, saved before its restart.
    T = ets:new(erlmcp_session_ha, [set, public, named_table, {keypos, #session_info.session_id}]),
    Now = erlang:system_time(millisecond),
    Recs = [#session_info{session_id = <<"s", (integer_to_binary(I))/binary>>, primary_node = node(),
                          secondary_nodes = [], session_data = #{i => I}, last_updated = Now,
                          replication_status = synced} || I <- lists:seq(1, 5)],
    true = ets:insert(T, Recs),
    true = ets:insert(T, {{retry_count, <<"s1">>}, 2}), %% not a session
    File = filename:join(?config(priv_dir, Config), "erlmcp_session_ha.ets"),
    ok = ets:tab2file(T, File),
    true = ets:delete(T),
    {ok, #{read := 5, stored := 5, present := 5, missing := []}} = erlmcp_session_ha_switchover:copy_sessions({file, File}),
    [?assertMatch({ok, #{session_data := #{i := I}}}, ?S:get_session(<<"s", (integer_to_binary(I))/binary>>))
     || I <- lists:seq(1, 5)],
    %% changed here since: a rerun keeps the newer data
    ok = ?S:replicate_session(<<"s1">>, #{i => changed}),
    {ok, #{read := 5, present := 5}} = erlmcp_session_ha_switchover:copy_sessions({file, File}),
    ?assertMatch({ok, #{session_data := #{i := changed}}}, ?S:get_session(<<"s1">>)),
    ?assertMatch({error, {bad_file, _}}, erlmcp_session_ha_switchover:copy_sessions({file, File ++ ".missing"})),
    ?assertMatch({error, {unreachable, _}}, erlmcp_session_ha_switchover:copy_sessions('nobody@nowhere')),
    ok.
