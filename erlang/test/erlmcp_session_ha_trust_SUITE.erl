%%% @doc The trust boundary over real Erlang distribution: forged and foreign messages of
%%% every kind change nothing and are counted while the real members keep replicating; a
%%% node with another cluster's key never becomes a peer; a key rotation in three steps
%%% never stops replication; an operator's retirement of a dead region replicates, is
%%% confirmed and unblocks tombstone collection; a stored value that does not decode safely
%%% is a typed error.
-module(erlmcp_session_ha_trust_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([forge_as_stranger/3]).
-export([forged_messages_change_nothing_and_are_counted/1,
         a_node_with_another_key_never_becomes_a_peer/1,
         a_key_rotation_in_three_steps_never_stops_replication/1,
         retiring_a_dead_region_unblocks_collection/1,
         a_value_that_does_not_decode_safely_is_a_typed_error/1]).

-define(CT, erlmcp_session_ha_ct).
-define(S, erlmcp_session_ha).
-define(N, erlmcp_session_ha_nif).

all() ->
    [forged_messages_change_nothing_and_are_counted,
     a_node_with_another_key_never_becomes_a_peer,
     a_key_rotation_in_three_steps_never_stops_replication,
     retiring_a_dead_region_unblocks_collection,
     a_value_that_does_not_decode_safely_is_a_typed_error].

init_per_suite(Config) ->
    case is_alive() of
        true -> Config;
        false -> {skip, "needs a distributed node: run rebar3 ct --sname NAME"}
    end.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    ?CT:case_dir(Case, Config).

end_per_testcase(_Case, _Config) ->
    ok.

c(R, F, A) -> ?CT:call(R, ?S, F, A).

sid(I) -> <<"session-", (integer_to_binary(I))/binary>>.

wait_peers(Regions, N) ->
    [?CT:wait_until(fun() -> length([x || #{connected := true} <- c(R, peers, [])]) =:= N end, 10000)
     || R <- Regions],
    ok.

status(R) ->
    {ok, S} = c(R, get_replication_status, []),
    S.

%% Every refusal counted on `R', whoever claimed to send it.
refusals(R) ->
    #{trust := #{refused := BySender, refused_other := Other}} = status(R),
    lists:sum([N || Counts <- [Other | maps:values(BySender)], N <- maps:values(Counts)]).

key_file(Config, Name, Lines) ->
    File = filename:join(proplists:get_value(case_dir, Config), Name),
    ok = file:write_file(File, [[L, $\n] || L <- Lines]),
    list_to_binary(File).

send_to(From, #{node := To}, Msg) ->
    %% From a process of `From''s node, over the distribution link to `To'.
    ?CT:call(From, erlang, send, [{?S, To}, Msg]).

%% Runs on a region node: a store of another cluster (another key) says hello to `To' as
%% this node, and sends it a frame of its own, signed under its key.
forge_as_stranger(Dir, To, IdTo) ->
    {ok, Stranger, _} = ?N:open(Dir, #{region => <<"mallory">>,
                                       frame_keys => {secrets, [<<"not the cookie">>]}}),
    {ok, Hello} = ?N:hello(Stranger, atom_to_binary(node(), utf8)),
    erlang:send({?S, To}, {sha_hello, Hello, true}),
    ok = ?N:add_peer(Stranger, IdTo, <<"us-west-2">>),
    {ok, Lsn} = ?N:put(Stranger, <<"session-1">>, <<"k">>, term_to_binary(<<"forged">>)),
    ok = erlmcp_session_ha_durable:await(Stranger, Lsn, 10000),
    {ok, Frame} = ?N:frame_for(Stranger, IdTo),
    erlang:send({?S, To}, {sha_frame, node(), Frame}),
    ?N:close(Stranger).

%%--------------------------------------------------------------------

forged_messages_change_nothing_and_are_counted(Config) ->
    [A, B] = Regions = ?CT:start_regions(Config, [<<"us-east-1">>, <<"us-west-2">>], #{}),
    wait_peers(Regions, 1),
    ok = c(A, put, [sid(1), <<"k">>, <<"before">>]),
    ok = c(A, force_sync, [10000]),
    Root = maps:get(digest_root, status(B)),
    Before = refusals(B),
    #{node := NodeA} = A,
    %% Garbage, a truncated frame, an old build's unauthenticated hello naming B's region
    %% under a forged id, a hello under a stranger's key.
    send_to(A, B, {sha_frame, NodeA, <<"not a frame">>}),
    HA = c(A, handle, []),
    #{id := IdB} = ?CT:call(B, ?N, info, [c(B, handle, [])]),
    {ok, Hb} = ?CT:call(A, ?N, heartbeat, [HA, IdB]),
    send_to(A, B, {sha_frame, NodeA, binary:part(Hb, 0, byte_size(Hb) - 7)}),
    send_to(A, B, {sha_hello, NodeA, 12345, <<"us-west-2">>, true}),
    StrangerDir = list_to_binary(filename:join(proplists:get_value(case_dir, Config), "stranger")),
    #{id := IdA} = ?CT:call(A, ?N, info, [HA]),
    ok = ?CT:call(A, ?MODULE, forge_as_stranger, [StrangerDir, maps:get(node, B), IdB]),
    %% A genuine heartbeat of A, sent twice: the second copy is a replay.
    {ok, Genuine} = ?CT:call(A, ?N, heartbeat, [HA, IdB]),
    send_to(A, B, {sha_frame, NodeA, Genuine}),
    send_to(A, B, {sha_frame, NodeA, Genuine}),
    ?CT:wait_until(fun() -> refusals(B) - Before >= 5 end, 10000),
    %% Nothing changed on B: the same sessions, the same peers.
    ?assertEqual(Root, maps:get(digest_root, status(B))),
    ?assertEqual({ok, <<"before">>}, c(B, get, [sid(1), <<"k">>])),
    ?assertEqual([NodeA], [N || #{node := N} <- c(B, peers, [])]),
    #{trust := #{refused := BySender, refused_other := Other}} = status(B),
    ?assert(maps:get(malformed, Other) >= 2),
    #{replayed := Replayed} = maps:get(IdA, BySender),
    ?assert(Replayed >= 1),
    ?assert(lists:any(fun(#{unauthenticated := U}) -> U >= 2 end, maps:values(BySender))),
    %% The real members keep replicating.
    ok = c(A, put, [sid(2), <<"k">>, <<"after">>]),
    ok = c(A, force_sync, [10000]),
    ?assertEqual({ok, <<"after">>}, c(B, get, [sid(2), <<"k">>])),
    {ok, _} = c(B, validate_consistency, []),
    ok.

a_node_with_another_key_never_becomes_a_peer(Config) ->
    Key = key_file(Config, "cluster.key", ["the cluster's own secret"]),
    Other = key_file(Config, "other.key", ["another cluster's secret"]),
    [A, B] = Regions = ?CT:start_regions(Config, [<<"us-east-1">>, <<"us-west-2">>],
                                        #{auth_key_file => Key}),
    M = ?CT:start_region(Config, <<"mallory">>, #{auth_key_file => Other}),
    ?CT:connect_all([A, B, M]),
    wait_peers(Regions, 1),
    ok = c(M, put, [sid(1), <<"k">>, <<"from_m">>]),
    ok = c(A, put, [sid(2), <<"k">>, <<"from_a">>]),
    ok = c(A, force_sync, [10000]),
    ?assertEqual({ok, <<"from_a">>}, c(B, get, [sid(2), <<"k">>])),
    ?CT:wait_until(fun() -> refusals(A) > 0 andalso refusals(M) > 0 end, 10000),
    [?assertEqual([], [N || #{node := N} <- c(R, peers, []), N =:= maps:get(node, M)]) || R <- Regions],
    ?assertEqual([], c(M, peers, [])),
    ?assertEqual({error, not_found}, c(A, get, [sid(1)])),
    #{trust := #{authenticated := true, frame_key_ids := [_]}} = status(A),
    ok.

a_key_rotation_in_three_steps_never_stops_replication(Config) ->
    Old = "the old cluster secret",
    New = "the new cluster secret",
    Names = [<<"us-east-1">>, <<"us-west-2">>],
    Files = [key_file(Config, binary_to_list(N) ++ ".key", [Old]) || N <- Names],
    [A, B] = Regions = [?CT:start_region(Config, N, #{auth_key_file => F})
                        || {N, F} <- lists:zip(Names, Files)],
    ?CT:connect_all(Regions),
    wait_peers(Regions, 1),
    %% Every node accepts the new key beside the old; then signs with it; then drops the old.
    %% Each step reaches one node at a time, and replication runs throughout.
    Steps = [[Old, New], [New, Old], [New]],
    lists:foldl(
      fun(Lines, I) ->
              lists:foldl(
                fun({R, File}, J) ->
                        ok = file:write_file(File, [[L, $\n] || L <- Lines]),
                        ok = c(R, reload_auth_key, []),
                        ok = c(A, put, [sid(J), <<"k">>, J]),
                        ok = c(A, force_sync, [10000]),
                        ?assertEqual({ok, J}, c(B, get, [sid(J), <<"k">>])),
                        J + 1
                end, I, lists:zip(Regions, Files))
      end, 1, Steps),
    ?assertEqual(0, refusals(A) + refusals(B)),
    #{trust := #{frame_key_ids := [_]}} = status(A),
    %% A file that cannot be used leaves the keys as they were.
    ok = file:write_file(hd(Files), <<"short\n">>),
    ?assertMatch({error, {auth_key, _}}, c(A, reload_auth_key, [])),
    ok = c(A, put, [sid(100), <<"k">>, 100]),
    ok = c(A, force_sync, [10000]),
    ok.

retiring_a_dead_region_unblocks_collection(Config) ->
    [A, B, C] = Regions = ?CT:start_regions(Config, [<<"us-east-1">>, <<"us-west-2">>, <<"eu-central-1">>], #{}),
    wait_peers(Regions, 2),
    #{id := IdC} = status(C),
    ?CT:stop_region(C),
    ok = c(A, put, [sid(1), <<"k">>, <<"v">>]),
    ok = c(A, delete, [sid(1), <<"k">>]),
    ok = c(A, force_sync, [10000]),
    ?CT:wait_until(fun() ->
                           #{trust := #{collection_blocked_by := By}, tombstones_pending := T} = status(A),
                           T > 0 andalso By =:= [IdC]
                   end, 10000),
    ?assertEqual({error, not_found}, c(A, retire_region, [<<"no-such-region">>])),
    ?assertEqual({ok, [IdC]}, c(A, retire_region, [<<"eu-central-1">>])),
    %% B learns it from A and confirms; then collection resumes on both.
    [?CT:wait_until(fun() ->
                            #{trust := #{retired := Retired, collection_blocked_by := By},
                              tombstones_pending := T} = status(R),
                            {[U || #{id := Id, unconfirmed_by := U} <- Retired, Id =:= IdC], By, T}
                                =:= {[[]], [], 0}
                    end, 15000) || R <- [A, B]],
    %% The field's tombstone is gone and the session, without content, reads as absent.
    ?assertEqual({error, not_found}, c(B, get, [sid(1)])),
    %% C made no write, so both give its history up at seq 0: whatever its disk still
    %% holds would be dropped if it came back.
    [?CT:wait_until(fun() ->
                            #{trust := #{retired := Retired}} = status(R),
                            [G || #{id := Id, given_up_at := G} <- Retired, Id =:= IdC] =:= [0]
                    end, 15000) || R <- [A, B]],
    ok.

a_value_that_does_not_decode_safely_is_a_typed_error(Config) ->
    [A] = ?CT:start_regions(Config, [<<"us-east-1">>], #{}),
    H = c(A, handle, []),
    %% An atom this node has never seen, in external term format (ATOM_UTF8_EXT).
    Name = <<"session_ha_atom_that_was_never_created_", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
    Unknown = <<131, 118, (byte_size(Name)):16, Name/binary>>,
    {ok, Lsn} = ?CT:call(A, ?N, put, [H, sid(1), <<"bad">>, Unknown]),
    {ok, _} = ?CT:call(A, ?N, put, [H, sid(1), <<"good">>, term_to_binary({ok, 42})]),
    ok = ?CT:call(A, erlmcp_session_ha_durable, await, [H, Lsn, 10000]),
    ?assertEqual({error, {undecodable, <<"bad">>}}, c(A, get, [sid(1), <<"bad">>])),
    ?assertEqual({error, {undecodable, <<"bad">>}}, c(A, get, [sid(1)])),
    ?assertEqual({ok, {ok, 42}}, c(A, get, [sid(1), <<"good">>])),
    %% ... and the atom was not created by trying.
    ?assertEqual(not_created, try ?CT:call(A, erlang, binary_to_existing_atom, [Name, utf8])
                              catch _:_ -> not_created
                              end),
    %% The server is unharmed.
    {ok, _} = c(A, get_replication_status, []),
    ok.
