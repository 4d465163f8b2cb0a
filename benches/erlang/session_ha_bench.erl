%%% @doc Load benchmark of `erlmcp_session_ha' (the Erlang API over the session-ha NIF).
%%%
%%% Run it with `benches/erlang/run.sh' (which builds the application first). Four parts, each
%%% printing Markdown tables:
%%%
%%% <ol>
%%% <li>`load': put/get throughput on this node, from 1, 2, 8, 64 and 512 processes, for the
%%%     durable `erlmcp_session_ha:put/3' (returns once fsynced; `{every_ms, 10}'), the raw
%%%     `erlmcp_session_ha_nif:put/4' (returns once queued), `erlmcp_session_ha:get/2' and
%%%     the raw `erlmcp_session_ha_nif:get_field/3'. Each put overwrites one 64-byte field of
%%%     one of 10,000 sessions of 8 fields. `erlang:system_monitor' counts `long_schedule'
%%%     events (a process or port scheduled in for more than 1 ms) during each run, except
%%%     those of the harness process itself.</li>
%%% <li>`lag': three region nodes (OTP `peer', distribution between them, as the DR drill
%%%     starts them); writers on the first region put at a fixed rate for a while; a probe
%%%     writes a new session every 20 ms and pollers on the two other regions time when each
%%%     probe becomes readable there. Lag is from the moment the probe's put returned (the
%%%     write acknowledged at the primary) to the moment it was read on the peer.</li>
%%% <li>`failover': on the same regions, sessions written at the primary, `force_sync/1', the
%%%     primary's node halted, and every synced session looked up on the DR region.</li>
%%% <li>`heal': the two surviving regions partitioned, the same 100,000 sessions written on
%%%     both sides, the link restored; time from the reconnect until `validate_consistency/0'
%%%     returns `ok' naming the other region, on both.</li>
%%% </ol>
%%%
%%% `main/1' takes the parts to run (default all), `secs=N' (seconds per load run) and, for
%%% the load part, `ops=durable_put,nif_put,get,nif_get' and `procs=1,2,8,64,512' (subsets);
%%% `heal_sessions=N' changes the 100,000 sessions of the heal.
%%% @end
-module(session_ha_bench).

-export([main/1]).
%% Run on region nodes through peer:call/5.
-export([start_region_server/2, paced_load/4, start_poller/1, stop_poller/0, write_new/3,
         missing/2, write_side/3]).

-define(S, erlmcp_session_ha).
-define(NIF, erlmcp_session_ha_nif).
-define(SESSIONS, 10000).
-define(FIELDS, 8).
-define(VALUE_BYTES, 64).
-define(PRIMARY, <<"us-east-1">>).
-define(DR, <<"us-west-2">>).
-define(THIRD, <<"eu-central-1">>).

%%====================================================================
%% Entry point
%%====================================================================

%% @doc Runs the parts named in `Args' (`load', `lag', `failover', `heal'; all when none is
%% named) and halts: 0 when every check held, 1 otherwise.
-spec main([string()]) -> no_return().
main(Args) ->
    Parts0 = [list_to_atom(A) || A <- Args, lists:member(A, ["load", "lag", "failover", "heal"])],
    Parts = case Parts0 of [] -> [load, lag, failover, heal]; _ -> Parts0 end,
    Secs = lists:foldl(fun("secs=" ++ N, _) -> list_to_integer(N); (_, Acc) -> Acc end, 3, Args),
    %% Optional subsets of the load part: ops=nif_put,get and procs=1,2.
    [persistent_term:put({?MODULE, K}, [list_to_atom(V) || V <- string:split(Vs, ",", all)])
     || A <- Args, [K0, Vs] <- [string:split(A, "=")], K <- [list_to_atom(K0)], lists:member(K, [ops])],
    [persistent_term:put({?MODULE, K}, [list_to_integer(V) || V <- string:split(Vs, ",", all)])
     || A <- Args, [K0, Vs] <- [string:split(A, "=")], K <- [list_to_atom(K0)], lists:member(K, [procs])],
    [persistent_term:put({?MODULE, heal_sessions}, list_to_integer(N)) || "heal_sessions=" ++ N <- Args],
    Base = base_dir(),
    say("session-ha Erlang benchmark: ~s, OTP ~s, ~b schedulers, ~b cores; data under ~s",
        [erlang:system_info(system_version) -- "\n", erlang:system_info(otp_release),
         erlang:system_info(schedulers_online), erlang:system_info(logical_processors), Base]),
    say("load average at start: ~s", [loadavg()]),
    %% In a process of its own: a crashed worker (linked) must end the run, not hang it.
    {Pid, Ref} = spawn_monitor(fun() -> exit(run(Parts, Secs, Base)) end),
    Result = receive
                 {'DOWN', Ref, process, Pid, ok} -> ok;
                 {'DOWN', Ref, process, Pid, Why} -> say("~nBENCHMARK FAILED: ~p", [Why]), error
             end,
    say("load average at end: ~s", [loadavg()]),
    _ = os:cmd("rm -rf " ++ Base),
    erlang:halt(case Result of ok -> 0; _ -> 1 end).

run(Parts, Secs, Base) ->
    try
        [ok = run_part(P, Secs, Base) || P <- Parts, lists:member(P, [load])],
        case [P || P <- Parts, P =/= load] of
            [] -> ok;
            Multi -> multi(Multi, Secs, Base)
        end
    catch C:R:St -> {C, R, St}
    end.

base_dir() ->
    Dir = filename:join(os:getenv("SESSION_HA_BENCH_DIR", "/tmp"),
                        "session_ha_bench_" ++ os:getpid()),
    ok = filelib:ensure_path(Dir),
    Dir.

loadavg() ->
    case file:read_file("/proc/loadavg") of
        {ok, B} -> string:trim(binary_to_list(B));
        _ -> "?"
    end.

say(Fmt, Args) -> io:format(Fmt ++ "~n", Args).

now_us() -> erlang:system_time(microsecond).
mono_ms() -> erlang:monotonic_time(millisecond).
mono_us() -> erlang:monotonic_time(microsecond).

%%====================================================================
%% 1. put/get throughput on this node
%%====================================================================

run_part(load, Secs, Base) ->
    Dir = list_to_binary(filename:join(Base, "load")),
    {ok, _} = erlmcp_session_ha_standalone:start(#{region => <<"bench-load">>, data_dir => Dir,
                                                    peers => []}),
    H = ?S:handle(),
    Data = data(),
    populate(H, Data),
    Mon = start_monitor(),
    Procs = persistent_term:get({?MODULE, procs}, [1, 2, 8, 64, 512]),
    Ops = persistent_term:get({?MODULE, ops}, [durable_put, nif_put, get, nif_get]),
    say("~n## put/get throughput: one node, ~b sessions x ~b fields x ~b B, ~b s per run~n",
        [?SESSIONS, ?FIELDS, ?VALUE_BYTES, Secs]),
    say("| operation | processes | ops/s | long_schedule events (> 1 ms) | longest (ms) | where |", []),
    say("| --- | --- | --- | --- | --- | --- |", []),
    Cases0 = [{durable_put, "`erlmcp_session_ha:put/3` (durable, waits for the fsync)",
              fun(N) -> ok = ?S:put(sid(Data, N), key(Data, N), val(Data, N)) end},
             {nif_put, "`erlmcp_session_ha_nif:put/4` (queued, raw NIF)",
              fun(N) -> {ok, _} = ?NIF:put(H, sid(Data, N), key(Data, N), enc(Data, N)) end},
             {get, "`erlmcp_session_ha:get/2` (one field, decoded)",
              fun(N) -> {ok, _} = ?S:get(sid(Data, N), key(Data, N)) end},
             {nif_get, "`erlmcp_session_ha_nif:get_field/3` (raw NIF)",
              fun(N) -> {ok, _} = ?NIF:get_field(H, sid(Data, N), key(Data, N)) end}],
    Cases = [{Name, Fun} || {Op, Name, Fun} <- Cases0, lists:member(Op, Ops)],
    lists:foreach(
      fun({Name, Fun}) ->
              lists:foreach(
                fun(P) ->
                        _ = events(Mon),
                        Rate = run_procs(P, Secs * 1000, Fun),
                        {Count, Longest, Where} = summarize(events(Mon)),
                        say("| ~s | ~b | ~s | ~s | ~b | ~s |",
                            [Name, P, fmt_int(Rate), Count, Longest, Where])
                end, Procs),
              %% Keep the log from growing without bound between runs.
              {ok, _} = ?NIF:snapshot(H)
      end, Cases),
    erlang:system_monitor(undefined),
    exit(Mon, kill),
    ok = erlmcp_session_ha_standalone:stop(),
    ok.

%% Session ids, keys and 64-byte values, made once.
data() ->
    Sids = list_to_tuple([iolist_to_binary(io_lib:format("~8.16.0b-bench-session-~6..0b", [erlang:phash2(I), I]))
                          || I <- lists:seq(1, ?SESSIONS)]),
    Keys = list_to_tuple([<<"field-", (integer_to_binary(J))/binary>> || J <- lists:seq(0, ?FIELDS - 1)]),
    Vals = [crypto:strong_rand_bytes(?VALUE_BYTES) || _ <- lists:seq(1, 1024)],
    {Sids, Keys, list_to_tuple(Vals), list_to_tuple([term_to_binary(V) || V <- Vals])}.

sid({Sids, _, _, _}, N) -> element(N rem ?SESSIONS + 1, Sids).
key({_, Keys, _, _}, N) -> element((N div 7) rem ?FIELDS + 1, Keys).
%% A 64-byte value, as a term for `erlmcp_session_ha:put/3'.
val({_, _, Vals, _}, N) -> element(N rem 1024 + 1, Vals).
%% The same value as `erlmcp_session_ha:put/3' stores it (external term format, 70 bytes),
%% for the raw NIF, so `erlmcp_session_ha:get/2' can read back what either wrote.
enc({_, _, _, Encs}, N) -> element(N rem 1024 + 1, Encs).

populate(H, {Sids, Keys, _, _} = Data) ->
    Last = lists:foldl(
             fun(I, _) ->
                     Fields = [{element(J, Keys), enc(Data, I * ?FIELDS + J)} || J <- lists:seq(1, ?FIELDS)],
                     {ok, L} = ?NIF:put_fields(H, element(I, Sids), Fields),
                     L
             end, 0, lists:seq(1, ?SESSIONS)),
    ok = erlmcp_session_ha_durable:await(H, Last, 30000).

%% Runs `Fun(N)' in a loop in `P' processes for `Ms' ms; returns ops/s over the time from the
%% start signal until the last process finished (a durable put in flight at the deadline
%% finishes and counts).
run_procs(P, Ms, Fun) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> worker(Parent, I, P, Fun) end) || I <- lists:seq(0, P - 1)],
    T0 = mono_us(),
    Deadline = mono_ms() + Ms,
    [Pid ! {go, Deadline} || Pid <- Pids],
    Total = lists:sum([receive {done, Pid, N} -> N end || Pid <- Pids]),
    Elapsed = mono_us() - T0,
    Total * 1000000 div max(1, Elapsed).

worker(Parent, I, P, Fun) ->
    receive {go, Deadline} -> ok end,
    N = work(Fun, I, P, Deadline, 0),
    Parent ! {done, self(), N}.

work(Fun, I, P, Deadline, Done) ->
    case Done band 63 =:= 0 andalso mono_ms() >= Deadline of
        true -> Done;
        false ->
            Fun(I + Done * P),
            work(Fun, I, P, Deadline, Done + 1)
    end.

%% long_schedule events: a process that collects them until asked. Events of the calling
%% process (the harness: spawning 512 workers copies their closures) are not counted.
start_monitor() ->
    Harness = self(),
    Pid = spawn(fun() -> monitor_loop(Harness, []) end),
    erlang:system_monitor(Pid, [{long_schedule, 1}]),
    Pid.

monitor_loop(Harness, Acc) ->
    receive
        {monitor, Harness, long_schedule, _} -> monitor_loop(Harness, Acc);
        {monitor, _Who, long_schedule, Info} -> monitor_loop(Harness, [Info | Acc]);
        {events, From} -> From ! {events, self(), Acc}, monitor_loop(Harness, [])
    end.

events(Mon) ->
    Mon ! {events, self()},
    receive {events, Mon, Es} -> Es end.

summarize([]) -> {"0", 0, "-"};
summarize(Es) ->
    Ts = [proplists:get_value(timeout, E, 0) || E <- Es],
    Longest = lists:max(Ts),
    Count = io_lib:format("~b (~b > 10 ms, ~b > 100 ms)",
                          [length(Es), length([T || T <- Ts, T > 10]), length([T || T <- Ts, T > 100])]),
    Where = lists:foldl(fun(E, M) ->
                                L = {proplists:get_value(in, E), proplists:get_value(out, E)},
                                maps:update_with(L, fun(C) -> C + 1 end, 1, M)
                        end, #{}, Es),
    Top = lists:sublist(lists:reverse(lists:keysort(2, maps:to_list(Where))), 2),
    [L | _] = [E || E <- Es, proplists:get_value(timeout, E, 0) =:= Longest],
    {Count, Longest,
     lists:flatten(lists:join("; ", [io_lib:format("~b x in ~s out ~s", [C, loc(In), loc(Out)])
                                      || {{In, Out}, C} <- Top])
                   ++ io_lib:format("; longest in ~s out ~s", [loc(proplists:get_value(in, L)),
                                                               loc(proplists:get_value(out, L))]))}.

loc({M, F, A}) -> io_lib:format("~s:~s/~b", [M, F, A]);
loc(Other) -> io_lib:format("~p", [Other]).

fmt_int(N) when N >= 1000000 -> io_lib:format("~.2f M", [N / 1000000]);
fmt_int(N) when N >= 1000 -> io_lib:format("~.1f k", [N / 1000]);
fmt_int(N) -> integer_to_list(N).

%%====================================================================
%% Region nodes (OTP peer, as the drill starts them)
%%====================================================================

start_region(Base, Region) ->
    Paths = lists:usort([filename:dirname(code:which(M)) || M <- [?S, ?MODULE]]),
    %% SESSION_HA_BENCH_REGION_ARGS: extra emulator flags for the region nodes (experiments).
    Extra = string:lexemes(os:getenv("SESSION_HA_BENCH_REGION_ARGS", ""), " "),
    Args = ["-kernel", "dist_auto_connect", "once", "-kernel", "prevent_overlapping_partitions", "false",
            "-setcookie", atom_to_list(erlang:get_cookie())]
        ++ lists:append([["-pa", P] || P <- Paths]) ++ Extra,
    {ok, Peer, Node} = peer:start_link(#{name => peer:random_name(binary_to_list(Region)),
                                         connection => standard_io, args => Args}),
    R = #{peer => Peer, node => Node, region => Region,
          dir => list_to_binary(filename:join(Base, binary_to_list(Region)))},
    ok = call(R, ?MODULE, start_region_server, [Region, maps:get(dir, R)]),
    R.

%% @doc Runs on a region node: starts `erlmcp_session_ha' with the defaults (fsync every
%% 10 ms, frames shipped every 50 ms) in `Dir'.
-spec start_region_server(binary(), binary()) -> ok.
start_region_server(Region, Dir) ->
    {ok, _} = erlmcp_session_ha_standalone:start(#{region => Region, data_dir => Dir}),
    ok.

call(#{peer := P}, M, F, A) -> peer:call(P, M, F, A, 600000).

wait_until(Fun, TimeoutMs) ->
    Deadline = mono_ms() + TimeoutMs,
    wait_loop(Fun, Deadline).
wait_loop(Fun, Deadline) ->
    case Fun() of
        true -> ok;
        _ -> case mono_ms() > Deadline of
                 true -> timeout;
                 false -> timer:sleep(5), wait_loop(Fun, Deadline)
             end
    end.

connected(R, N) ->
    length([x || #{connected := true} <- call(R, ?S, peers, [])]) >= N.

multi(Parts, Secs, Base) ->
    T0 = mono_ms(),
    [A, B, C] = Rs = [start_region(Base, R) || R <- [?PRIMARY, ?DR, ?THIRD]],
    [true = call(X, net_kernel, connect_node, [maps:get(node, Y)]) || {X, Y} <- [{A, B}, {A, C}, {B, C}]],
    ok = wait_until(fun() -> lists:all(fun(R) -> connected(R, 2) end, Rs) end, 20000),
    say("~nthree regions up and connected in ~b ms: ~s (primary), ~s (DR), ~s",
        [mono_ms() - T0, ?PRIMARY, ?DR, ?THIRD]),
    [ok = lag_part(A, [B, C], Secs) || lists:member(lag, Parts)],
    [ok = failover_part(A, B) || lists:member(failover, Parts)],
    %% The heal is between the two survivors: with the primary still up, it would relay
    %% between them and there would be no partition.
    [peer:cast(maps:get(peer, A), erlang, halt, [137]) || not lists:member(failover, Parts)],
    [ok = heal_part(B, C) || lists:member(heal, Parts)],
    lists:foreach(fun(#{peer := P}) -> catch peer:stop(P) end, Rs),
    ok.

%%====================================================================
%% 2. replication lag at a sustained write rate
%%====================================================================

lag_part(A, Others, Secs) ->
    Ms = max(10, Secs * 3) * 1000,
    say("~n## replication lag: writers on ~s at a fixed rate for ~b s; probes every 20 ms~n",
        [?PRIMARY, Ms div 1000]),
    say("| writes | target rate | achieved rate | load avg | lag p50 | lag p99 | lag max | probes | status lag p50 / p99 |", []),
    say("| --- | --- | --- | --- | --- | --- | --- | --- | --- |", []),
    Runs = [{durable, 2000}, {durable, 5000}, {durable, 10000}, {durable, 20000},
            {queued, 20000}],
    lists:foreach(fun({Mode, Rate}) -> lag_run(A, Others, Mode, Rate, Ms) end, Runs),
    ok.

lag_run(A, Others, Mode, Rate, Ms) ->
    Tag = iolist_to_binary(io_lib:format("~s-~b-~b", [Mode, Rate, erlang:unique_integer([positive])])),
    [ok = call(O, ?MODULE, start_poller, [Tag]) || O <- Others],
    Self = self(),
    Sampler = spawn_link(fun() -> sample(A, Self, []) end),
    Load = loadavg(),
    {Written, ElapsedMs, Probes} = call(A, ?MODULE, paced_load, [Mode, Rate, Ms, Tag]),
    Sampler ! stop,
    StatusLags = receive {lags, L} -> L end,
    %% Let the last probes land before collecting.
    timer:sleep(1000),
    Seen = lists:append([call(O, ?MODULE, stop_poller, []) || O <- Others]),
    Acked = maps:from_list([{N, TAck} || {N, _TIssue, TAck} <- Probes]),
    Lags = [max(0, TSeen - maps:get(N, Acked)) div 1000 || {N, TSeen} <- Seen, maps:is_key(N, Acked)],
    Expected = 2 * length(Probes),
    {P50, P99, Max} = percentiles(Lags),
    {S50, S99, _} = percentiles(StatusLags),
    say("| ~s | ~s/s | ~s/s | ~s | ~b ms | ~b ms | ~b ms | ~b of ~b seen | ~b / ~b ms |",
        [mode_name(Mode), fmt_int(Rate), fmt_int(Written * 1000 div max(1, ElapsedMs)),
         hd(string:split(Load, " ")), P50, P99, Max, length(Lags), Expected, S50, S99]).

mode_name(durable) -> "`erlmcp_session_ha:put/3` (durable)";
mode_name(queued) -> "`erlmcp_session_ha_nif:put/4` (queued)".

sample(A, Parent, Acc) ->
    receive stop -> Parent ! {lags, Acc}
    after 100 ->
        Acc1 = try call(A, ?S, get_replication_status, []) of
                   {ok, #{peers := Peers}} -> [L || #{lag_ms := L} <- maps:values(Peers)] ++ Acc
               catch _:_ -> Acc
               end,
        sample(A, Parent, Acc1)
    end.

percentiles([]) -> {0, 0, 0};
percentiles(L) ->
    S = lists:sort(L),
    N = length(S),
    {lists:nth(max(1, (N * 50 + 99) div 100), S), lists:nth(max(1, (N * 99 + 99) div 100), S),
     lists:last(S)}.

%% @doc Runs on the primary: writes at `Rate' puts/s for `Ms' ms (durable `put/3' from 512
%% processes, or queued NIF puts from 8), overwriting fields of 10,000 sessions, while a
%% probe process writes session `<Tag>-probe-N' every 20 ms the same way. Returns
%% `{Written, ElapsedMs, [{N, IssuedUs, AckedUs}]}'.
-spec paced_load(durable | queued, pos_integer(), pos_integer(), binary()) ->
    {non_neg_integer(), non_neg_integer(), [{pos_integer(), integer(), integer()}]}.
paced_load(Mode, Rate, Ms, Tag) ->
    H = ?S:handle(),
    Data = data(),
    Put = case Mode of
              durable -> fun(Sid, K, V) -> ok = ?S:put(Sid, K, V) end;
              queued -> fun(Sid, K, V) -> {ok, _} = ?NIF:put(H, Sid, K, term_to_binary(V)), ok end
          end,
    Procs = case Mode of durable -> 512; queued -> 8 end,
    Parent = self(),
    T0 = mono_us(),
    End = T0 + Ms * 1000,
    Pids = [spawn_link(fun() ->
                               N = paced(Put, Data, I, Procs, Rate / Procs, T0, End, 0),
                               Parent ! {done, self(), N}
                       end) || I <- lists:seq(0, Procs - 1)],
    Prober = spawn_link(fun() -> Parent ! {probes, probe(Put, Tag, 1, End, [])} end),
    Written = lists:sum([receive {done, Pid, N} -> N end || Pid <- Pids]),
    Elapsed = (mono_us() - T0) div 1000,
    Probes = receive {probes, P} -> P end,
    unlink(Prober),
    %% The log grows by the whole run: snapshot so the next run starts from a short one.
    {ok, _} = ?NIF:snapshot(H),
    {Written, Elapsed, Probes}.

%% One paced writer: makes its `PerSec' share of the writes due by now, then sleeps a
%% millisecond; stops at `End'.
paced(Put, Data, I, Procs, PerSec, T0, End, Done) ->
    Now = mono_us(),
    case Now >= End of
        true -> Done;
        false ->
            Due = trunc((Now - T0) * PerSec / 1000000),
            Burst = max(0, min(Due - Done, 1000)),
            [Put(sid(Data, N), key(Data, N), val(Data, N))
             || K <- lists:seq(1, Burst), N <- [I + (Done + K) * Procs]],
            case Burst > 0 of
                true -> ok;
                false -> receive after 1 -> ok end
            end,
            paced(Put, Data, I, Procs, PerSec, T0, End, Done + Burst)
    end.

probe_sid(Tag, N) -> <<Tag/binary, "-probe-", (integer_to_binary(N))/binary>>.

probe(Put, Tag, N, End, Acc) ->
    case mono_us() >= End of
        true -> lists:reverse(Acc);
        false ->
            TIssue = now_us(),
            ok = Put(probe_sid(Tag, N), <<"t">>, <<"p">>),
            TAck = now_us(),
            receive after 20 -> ok end,
            probe(Put, Tag, N + 1, End, [{N, TIssue, TAck} | Acc])
    end.

%% @doc Runs on a region: starts (and registers) a poller that looks up probe 1, 2, ... of
%% `Tag' every millisecond and keeps when each became readable.
-spec start_poller(binary()) -> ok.
start_poller(Tag) ->
    H = ?S:handle(),
    Pid = spawn(fun() -> poll(H, Tag, 1, []) end),
    true = register(session_ha_bench_poller, Pid),
    ok.

poll(H, Tag, N, Acc) ->
    case ?NIF:get_field(H, probe_sid(Tag, N), <<"t">>) of
        {ok, _} -> poll(H, Tag, N + 1, [{N, now_us()} | Acc]);
        {error, not_found} ->
            receive
                {stop, From} -> From ! {seen, self(), Acc}
            after 1 -> poll(H, Tag, N, Acc)
            end
    end.

%% @doc Runs on a region: stops the poller; returns `[{N, SeenUs}]'.
-spec stop_poller() -> [{pos_integer(), integer()}].
stop_poller() ->
    Pid = whereis(session_ha_bench_poller),
    Pid ! {stop, self()},
    receive {seen, Pid, Acc} -> _ = (catch unregister(session_ha_bench_poller)), Acc
    after 10000 -> exit(poller_stuck)
    end.

%%====================================================================
%% 3. failover with zero loss of synced sessions
%%====================================================================

failover_part(A, B) ->
    Count = 20000,
    T0 = mono_ms(),
    Acked = call(A, ?MODULE, write_new, [<<"failover">>, Count, 64]),
    WriteMs = mono_ms() - T0,
    TS = mono_ms(),
    ok = call(A, ?S, force_sync, [60000]),
    SyncMs = mono_ms() - TS,
    TK = mono_ms(),
    peer:cast(maps:get(peer, A), erlang, halt, [137]),
    Missing = call(B, ?MODULE, missing, [<<"failover">>, Count]),
    CheckMs = mono_ms() - TK,
    say("~n## failover~n", []),
    say("| sessions written and acknowledged at ~s | force_sync | halted ~s; missing on ~s | lookup of all on ~s |",
        [?PRIMARY, ?PRIMARY, ?DR, ?DR]),
    say("| --- | --- | --- | --- |", []),
    say("| ~b (in ~b ms, 64 writers, durable `put/2`) | ~b ms | **~b** | ~b ms |",
        [Acked, WriteMs, SyncMs, Missing, CheckMs]),
    case Missing of 0 -> ok; _ -> {error, {lost, Missing}} end.

%% @doc Runs on a region: writes sessions `<Prefix>-1..Count' (one durable `put/2' of two
%% fields each) from `Procs' processes; returns how many were acknowledged.
-spec write_new(binary(), pos_integer(), pos_integer()) -> non_neg_integer().
write_new(Prefix, Count, Procs) ->
    Parent = self(),
    Pids = [spawn_link(fun() ->
                               N = length([ok = ?S:put(new_sid(Prefix, I), #{<<"user">> => {user, I},
                                                                               <<"region">> => node()})
                                           || I <- lists:seq(W, Count, Procs)]),
                               Parent ! {done, self(), N}
                       end) || W <- lists:seq(1, Procs)],
    lists:sum([receive {done, Pid, N} -> N end || Pid <- Pids]).

new_sid(Prefix, I) -> <<Prefix/binary, "-", (integer_to_binary(I))/binary>>.

%% @doc Runs on a region: how many of sessions `<Prefix>-1..Count' it does not serve.
-spec missing(binary(), pos_integer()) -> non_neg_integer().
missing(Prefix, Count) ->
    length([I || I <- lists:seq(1, Count), ?S:get(new_sid(Prefix, I), <<"user">>) =/= {ok, {user, I}}]).

%%====================================================================
%% 4. time to consistent after a heal
%%====================================================================

heal_part(B, C) ->
    Count = persistent_term:get({?MODULE, heal_sessions}, 100000),
    #{node := NB} = B,
    #{node := NC} = C,
    true = call(B, erlang, disconnect_node, [NC]),
    ok = wait_until(fun() -> not lists:member(NC, call(B, erlang, nodes, [])) end, 10000),
    T0 = mono_ms(),
    Self = self(),
    [spawn_link(fun() -> Self ! {side, R, call(R, ?MODULE, write_side, [<<"heal">>, Count, maps:get(region, R)])} end)
     || R <- [B, C]],
    [receive {side, R, ok} -> ok end || R <- [B, C]],
    WriteMs = mono_ms() - T0,
    {error, {inconsistent, _}} = diverged(B, C),
    TH = mono_ms(),
    true = call(B, net_kernel, connect_node, [NC]),
    Consistent = fun(X, Other) ->
                         case call(X, ?S, validate_consistency, []) of
                             {ok, #{peers := Ps}} -> lists:member(Other, Ps);
                             _ -> false
                         end
                 end,
    %% First when the digest roots agree (replication caught up both ways), then the API's
    %% verdict on each side.
    ok = wait_until(fun() -> diverged(B, C) =:= ok end, 120000),
    RootsMs = mono_ms() - TH,
    ok = wait_until(fun() -> Consistent(B, NC) end, 120000),
    BMs = mono_ms() - TH,
    ok = wait_until(fun() -> Consistent(C, NB) end, 120000),
    BothMs = mono_ms() - TH,
    Sample = new_sid(<<"heal">>, 4242),
    {ok, Winner} = call(B, ?S, get, [Sample, <<"owner">>]),
    {ok, Winner} = call(C, ?S, get, [Sample, <<"owner">>]),
    say("~n## time to consistent after a heal~n", []),
    say("| sessions written on both sides | writing (both sides at once) | reconnect to equal digest roots | to `validate_consistency()` ok on ~s | on both | |",
        [?DR]),
    say("| --- | --- | --- | --- | --- | --- |", []),
    say("| ~b, each on ~s and on ~s (every session conflicts) | ~b ms | ~b ms | ~b ms | **~b ms** | last writer won: ~s |",
        [Count, ?DR, ?THIRD, WriteMs, RootsMs, BMs, BothMs, Winner]),
    ok.

%% Before the heal: the two regions must differ (or the heal measures nothing).
diverged(B, C) ->
    RB = call(B, ?NIF, digest_root, [call(B, ?S, handle, [])]),
    RC = call(C, ?NIF, digest_root, [call(C, ?S, handle, [])]),
    case RB =:= RC of
        true -> ok;
        false -> {error, {inconsistent, roots}}
    end.

%% @doc Runs on a region: writes sessions `<Prefix>-1..Count', field `owner' set to this
%% region, from 512 processes with durable `put/3'.
-spec write_side(binary(), pos_integer(), binary()) -> ok.
write_side(Prefix, Count, Region) ->
    Parent = self(),
    Procs = 512,
    Pids = [spawn_link(fun() ->
                               [ok = ?S:put(new_sid(Prefix, I), <<"owner">>, Region)
                                || I <- lists:seq(W, Count, Procs)],
                               Parent ! {done, self()}
                       end) || W <- lists:seq(1, Procs)],
    [receive {done, Pid} -> ok end || Pid <- Pids],
    ok.
