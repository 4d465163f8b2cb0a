%%% @doc The disaster-recovery drill: three regions as real BEAM nodes on this machine
%%% (OTP `peer', Erlang distribution between them), each running `erlmcp_session_ha' on its
%%% default data directory (`data/session_ha/<region>' under the current directory). It
%%% writes sessions at the primary under load while sampling replication lag, syncs, kills
%%% the primary and checks every synced session is served by the DR region, partitions and
%%% heals two regions with conflicting writes and times how long until they validate as
%%% consistent, corrupts a WAL record on one region and shows `verify/0' catching it and the
%%% region rebuilding from its peers; then prints a summary table. `main/0' halts with 0 when
%%% no session was lost and every step passed, 1 otherwise.
%%% @hidden
-module(erlmcp_session_ha_drill).

-export([main/0, main/1, load/3, missing/2, corrupt_wal/1]).

-define(S, erlmcp_session_ha).
-define(PRIMARY, <<"us-east-1">>).
-define(DR, <<"us-west-2">>).
-define(THIRD, <<"eu-central-1">>).

%% @doc Runs the drill with 32 writers for 3 seconds and halts.
-spec main() -> no_return().
main() ->
    main([]).

%% @doc Runs the drill (`["Writers", "Seconds"]' optional) and halts.
-spec main([string()]) -> no_return().
main(Args) ->
    {Writers, Secs} = case Args of
                          [W, D] -> {list_to_integer(W), list_to_integer(D)};
                          _ -> {32, 3}
                      end,
    Result = try drill(Writers, Secs * 1000)
             catch C:R:St -> io:format("~nDRILL FAILED: ~p:~p~n~p~n", [C, R, St]), error
             end,
    erlang:halt(case Result of ok -> 0; _ -> 1 end).

say(Fmt, Args) -> io:format(Fmt ++ "~n", Args).

ms_since(T0) -> erlang:monotonic_time(millisecond) - T0.
now_ms() -> erlang:monotonic_time(millisecond).

start(Region) ->
    Paths = [filename:dirname(code:which(?MODULE))],
    Args = ["-kernel", "dist_auto_connect", "once", "-kernel", "prevent_overlapping_partitions", "false", "-setcookie", atom_to_list(erlang:get_cookie())]
        ++ lists:append([["-pa", P] || P <- Paths]),
    {ok, Peer, Node} = peer:start_link(#{name => peer:random_name(binary_to_list(Region)),
                                         connection => standard_io, args => Args}),
    #{peer => Peer, node => Node, region => Region}.

call(#{peer := P}, M, F, A) -> peer:call(P, M, F, A, 120000).
c(R, F, A) -> call(R, ?S, F, A).

start_server(R, Extra) ->
    {ok, _} = call(R, erlmcp_session_ha_standalone, start, [maps:merge(#{region => maps:get(region, R)}, Extra)]),
    ok.

wait_until(Fun, TimeoutMs) ->
    Deadline = now_ms() + TimeoutMs,
    wait_loop(Fun, Deadline).
wait_loop(Fun, Deadline) ->
    case Fun() of
        true -> ok;
        _ -> case now_ms() > Deadline of
                 true -> timeout;
                 false -> timer:sleep(10), wait_loop(Fun, Deadline)
             end
    end.

connected(R, N) ->
    length([x || #{connected := true} <- c(R, peers, [])]) >= N.

drill(Writers, LoadMs) ->
    {ok, Cwd} = file:get_cwd(),
    say("== session-ha DR drill ==", []),
    say("data directories: ~s/data/session_ha/<region> (the default)", [Cwd]),
    T0 = now_ms(),
    [A, B, C] = Rs = [start(R) || R <- [?PRIMARY, ?DR, ?THIRD]],
    [true = call(X, net_kernel, connect_node, [maps:get(node, Y)]) || {X, Y} <- [{A, B}, {A, C}, {B, C}]],
    [start_server(R, #{}) || R <- Rs],
    ok = wait_until(fun() -> lists:all(fun(R) -> connected(R, 2) end, Rs) end, 10000),
    say("[1] regions up in ~b ms: ~s (primary), ~s (DR), ~s", [ms_since(T0), ?PRIMARY, ?DR, ?THIRD]),

    %% 2. load at the primary while sampling lag
    say("[2] load: ~b writers on ~s for ~b ms", [Writers, ?PRIMARY, LoadMs]),
    Self = self(),
    Sampler = spawn_link(fun() -> sample(A, Self, []) end),
    TL = now_ms(),
    Acked = call(A, ?MODULE, load, [Writers, LoadMs, <<"drill">>]),
    LoadTook = ms_since(TL),
    Sampler ! stop,
    Lags = receive {lags, L} -> L end,
    Written = lists:sum([N || {_, N} <- Acked]),
    say("    ~b sessions written and acknowledged (~b/s)", [Written, Written * 1000 div max(1, LoadTook)]),
    {ok, St} = c(A, get_replication_status, []),
    print_status(St),

    %% 3. sync
    TS = now_ms(),
    ok = c(A, force_sync, [30000]),
    SyncMs = ms_since(TS),
    say("[3] force_sync: every region acknowledged all ~b sessions in ~b ms", [Written, SyncMs]),

    %% 4. kill the primary; the DR region must serve every synced session
    TK = now_ms(),
    peer:cast(maps:get(peer, A), erlang, halt, [137]),
    MissingDR = call(B, ?MODULE, missing, [Acked, <<"drill">>]),
    FailoverMs = ms_since(TK),
    say("[4] killed ~s; ~s serves ~b of ~b synced sessions ~b ms later (lost: ~b)",
        [?PRIMARY, ?DR, Written - MissingDR, Written, FailoverMs, MissingDR]),

    %% 5. partition DR <-> third, conflicting writes, heal, validate
    true = call(B, erlang, disconnect_node, [maps:get(node, C)]),
    Conflicts = 100,
    [ok = c(B, put, [conflict_id(I), <<"owner">>, ?DR]) || I <- lists:seq(1, Conflicts)],
    [ok = c(C, put, [conflict_id(I), <<"owner">>, ?THIRD]) || I <- lists:seq(1, Conflicts)],
    [ok = c(C, incr, [conflict_id(I), <<"writes">>, 1]) || I <- lists:seq(1, Conflicts)],
    [ok = c(B, incr, [conflict_id(I), <<"writes">>, 1]) || I <- lists:seq(1, Conflicts)],
    TH = now_ms(),
    true = call(B, net_kernel, connect_node, [maps:get(node, C)]),
    ok = wait_until(fun() -> connected(B, 1) andalso connected(C, 1) end, 10000),
    ok = wait_until(fun() -> element(1, c(B, validate_consistency, [])) =:= ok end, 30000),
    HealMs = ms_since(TH),
    {ok, Owner} = c(B, get, [conflict_id(1), <<"owner">>]),
    {ok, Owner} = c(C, get, [conflict_id(1), <<"owner">>]),
    {ok, 2} = c(C, counter, [conflict_id(1), <<"writes">>]),
    say("[5] partitioned ~s | ~s, ~b sessions written on both sides, healed: consistent after ~b ms "
        "(last writer ~s won each field; counters kept both increments)", [?DR, ?THIRD, Conflicts, HealMs, Owner]),

    %% 6. corrupt a WAL record on the third region; verify catches it; it rebuilds from peers
    {File, Offset} = call(C, ?MODULE, corrupt_wal, [<<"data/session_ha/", ?THIRD/binary, "/wal">>]),
    Verdict = c(C, verify, []),
    Detected = case Verdict of {error, {corrupt, _}} -> true; _ -> false end,
    say("[6] flipped one byte of ~s at offset ~b; verify() -> ~s", [File, Offset,
        case Detected of true -> "corrupt (detected)"; false -> io_lib:format("~p", [Verdict]) end]),
    ok = call(C, erlmcp_session_ha_standalone, stop, []),
    TR = now_ms(),
    start_server(C, #{recovery => rebuild_from_peers}),
    ok = wait_until(fun() -> connected(C, 1) end, 10000),
    ok = wait_until(fun() -> element(1, c(C, validate_consistency, [])) =:= ok end, 60000),
    RebuildMs = ms_since(TR),
    MissingThird = call(C, ?MODULE, missing, [Acked, <<"drill">>]),
    {ok, #{open := Open}} = c(C, get_replication_status, []),
    say("    ~s kept its log up to the damage (records lost there: ~s), continued as a new "
        "incarnation, refilled from ~s and validated in ~b ms (missing sessions: ~b)",
        [?THIRD, lost_range(maps:get(lost, Open)), ?DR, RebuildMs, MissingThird]),

    %% 7. summary
    {P50, P99} = percentiles(Lags),
    Lost = MissingDR,
    Rows = [{"sessions written (acknowledged)", integer_to_list(Written)},
            {"sessions synced before failover", integer_to_list(Written)},
            {"sessions lost on failover", integer_to_list(Lost)},
            {"replication lag p50 / p99 (ms)", io_lib:format("~b / ~b", [P50, P99])},
            {"force_sync after load (ms)", integer_to_list(SyncMs)},
            {"failover time (ms)", integer_to_list(FailoverMs)},
            {"time to consistent after heal (ms)", integer_to_list(HealMs)},
            {"corruption detected by verify", atom_to_list(Detected)},
            {"rebuild from peers (ms)", integer_to_list(RebuildMs)},
            {"sessions missing after rebuild", integer_to_list(MissingThird)}],
    say("~n| metric | value |~n| --- | --- |", []),
    lists:foreach(fun({K, V}) -> say("| ~s | ~s |", [K, V]) end, Rows),
    lists:foreach(fun(#{peer := P}) -> try peer:stop(P) catch _:_ -> ok end end, [B, C]),
    case Lost =:= 0 andalso MissingThird =:= 0 andalso Detected of
        true -> say("~nDRILL PASSED", []), ok;
        false -> say("~nDRILL FAILED", []), error
    end.

conflict_id(I) -> <<"conflict-", (integer_to_binary(I))/binary>>.

print_status(#{replicas := Rs, lag := Lag, synced := Synced, peers := Peers}) ->
    say("    replication status at ~s: replicas ~p, lag ~b ms, synced ~p", [?PRIMARY, Rs, Lag, Synced]),
    maps:foreach(fun(Node, #{pending_ops := P, lag_ms := L, connected := Con}) ->
                         say("      ~p: connected ~p, pending ops ~b, lag ~b ms", [Node, Con, P, L])
                 end, Peers).

sample(A, Parent, Acc) ->
    receive stop -> Parent ! {lags, Acc}
    after 100 ->
        Acc1 = try c(A, get_replication_status, []) of
                   {ok, #{peers := Peers}} -> [L || #{lag_ms := L} <- maps:values(Peers)] ++ Acc
               catch _:_ -> Acc
               end,
        sample(A, Parent, Acc1)
    end.

percentiles([]) -> {0, 0};
percentiles(L) ->
    S = lists:sort(L),
    N = length(S),
    {lists:nth(max(1, (N * 50 + 99) div 100), S), lists:nth(max(1, (N * 99 + 99) div 100), S)}.

%% @doc Runs on the primary: `Writers' processes each write sessions for `Ms' ms; returns
%% `[{Writer, Count}]', every session `1..Count' of each writer acknowledged (durable).
-spec load(pos_integer(), pos_integer(), binary()) -> [{pos_integer(), non_neg_integer()}].
load(Writers, Ms, Prefix) ->
    Deadline = now_ms() + Ms,
    Parent = self(),
    Pids = [spawn_link(fun() -> Parent ! {self(), W, write(W, 1, Deadline, Prefix)} end) || W <- lists:seq(1, Writers)],
    [receive {Pid, W, N} -> {W, N} end || Pid <- Pids].

write(W, I, Deadline, Prefix) ->
    case now_ms() >= Deadline of
        true -> I - 1;
        false ->
            Sid = session_id(Prefix, W, I),
            ok = ?S:put(Sid, #{<<"user">> => {user, W, I}, <<"region">> => ?PRIMARY,
                               <<"started">> => erlang:system_time(millisecond)}),
            ok = ?S:touch(Sid, 3600000),
            write(W, I + 1, Deadline, Prefix)
    end.

session_id(Prefix, W, I) ->
    <<Prefix/binary, "-", (integer_to_binary(W))/binary, "-", (integer_to_binary(I))/binary>>.

lost_range({First, Last}) -> io_lib:format("~b..~b", [First, Last]);
lost_range(_) -> "none".

%% @doc Runs on a region: how many of the acknowledged sessions it does not serve.
-spec missing([{pos_integer(), non_neg_integer()}], binary()) -> non_neg_integer().
missing(Acked, Prefix) ->
    length([x || {W, N} <- Acked, I <- lists:seq(1, N),
                 ?S:get(session_id(Prefix, W, I), <<"user">>) =/= {ok, {user, W, I}}]).

%% @doc Runs on a region: flips one byte in the middle of its oldest WAL segment (a record
%% with valid records after it); returns the file and offset.
-spec corrupt_wal(binary()) -> {binary(), non_neg_integer()}.
corrupt_wal(Dir) ->
    [First | _] = lists:sort(filelib:wildcard(binary_to_list(Dir) ++ "/wal-*.log")),
    {ok, Bin} = file:read_file(First),
    Offset = byte_size(Bin) div 2,
    <<Before:Offset/binary, Byte, After/binary>> = Bin,
    ok = file:write_file(First, <<Before/binary, (Byte bxor 16#40), After/binary>>),
    {list_to_binary(First), Offset}.
