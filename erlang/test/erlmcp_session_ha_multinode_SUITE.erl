%%% @doc Replication between regions running as real BEAM nodes (OTP `peer'), over plain
%%% Erlang distribution (TCP): the cases of `erlmcp_session_ha_replication_cases' (replication
%%% to two peers, forwarding when the origin dies, a partition with concurrent writes that
%%% heals, a restarted node that recovers from disk and catches up, a crashed server restarted
%%% by its supervisor, validate/repair naming and fixing exactly the differing sessions, an
%%% end that stays an end, status per peer). `erlmcp_session_ha_tls_SUITE' runs the same
%%% cases over TLS.
-module(erlmcp_session_ha_multinode_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).

-include("erlmcp_session_ha_replication_cases.hrl").

-define(CT, erlmcp_session_ha_ct).

all() ->
    ?REPLICATION_CASES:all().

init_per_suite(Config) ->
    case is_alive() of
        true -> Config;
        false -> {skip, "needs a distributed node: run rebar3 ct --sname NAME"}
    end.

end_per_suite(_Config) ->
    ok.

%% Region nodes are linked to the test case process: they stop with it.
init_per_testcase(Case, Config) ->
    ?CT:case_dir(Case, Config).

end_per_testcase(_Case, _Config) ->
    ok.
