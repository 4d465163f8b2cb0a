%%% @doc Helpers for the multi-node suites: regions as real BEAM nodes started with OTP's
%%% `peer' (controlled over standard I/O, so partitioning their distribution links never cuts
%%% the test's control), each running `erlmcp_session_ha' under a small supervisor.
-module(erlmcp_session_ha_ct).
-export([case_dir/2, start_regions/3, start_region/3, start_region/4, stop_region/1, node_args/0,
         call/4, connect_all/1, partition/2, heal/2, wait_until/2]).

-export_type([region/0]).

-type region() :: #{peer := pid(), node := node(), region := binary(), dir := binary()}.

%% @doc Starts one node per region name, connects them all and starts the server on each.
-spec start_regions(list(), [binary()], map()) -> [region()].
start_regions(Config, Names, Extra) ->
    Regions = [start_region(Config, Name, Extra) || Name <- Names],
    connect_all(Regions),
    Regions.

%% @doc Starts one region node with its server; its data lives in the test case's own
%% directory (`case_dir', set by `case_dir/2'), or the suite's priv dir. `{node_args, Args}'
%% in `Config' adds emulator arguments to every node (the TLS suite's `-proto_dist').
-spec start_region(list(), binary(), map()) -> region().
start_region(Config, Name, Extra) ->
    start_region(Config, Name, peer:random_name(binary_to_list(Name)), Extra).

%% @doc {@link start_region/3} on a node of the given name (the part before the `@').
-spec start_region(list(), binary(), string(), map()) -> region().
start_region(Config, Name, NodeName, Extra) ->
    Base = proplists:get_value(case_dir, Config, proplists:get_value(priv_dir, Config)),
    Dir = iolist_to_binary(filename:join(Base, Name)),
    Paths = lists:usort([filename:dirname(code:which(M)) || M <- [erlmcp_session_ha, ?MODULE]]),
    Args = node_args() ++ proplists:get_value(node_args, Config, []) ++
        lists:append([["-pa", P] || P <- Paths]),
    {ok, Peer, Node} = peer:start_link(#{name => NodeName, connection => standard_io, args => Args}),
    Region = #{peer => Peer, node => Node, region => Name, dir => Dir},
    Opts = maps:merge(#{region => Name, data_dir => Dir, sync_interval_ms => 20}, Extra),
    {ok, _} = call(Region, erlmcp_session_ha_standalone, start, [Opts]),
    Region.

%% @doc Arguments of every test node: this node's cookie, links that stay cut once cut,
%% and no disconnecting of third nodes on a partial partition.
-spec node_args() -> [string()].
node_args() ->
    ["-kernel", "dist_auto_connect", "once", "-kernel", "prevent_overlapping_partitions", "false",
     "-setcookie", atom_to_list(erlang:get_cookie())].

%% @doc Adds a fresh data directory for test case `Case' to `Config': named after the case,
%% with a number added when that name is taken (the suites of one run share a priv dir,
%% and two suites run the same replication cases).
-spec case_dir(atom(), list()) -> list().
case_dir(Case, Config) ->
    Dir = fresh_dir(filename:join(proplists:get_value(priv_dir, Config), atom_to_list(Case)), 1),
    ok = filelib:ensure_path(Dir),
    [{case_dir, Dir} | Config].

fresh_dir(Base, N) ->
    Dir = case N of 1 -> Base; _ -> Base ++ "-" ++ integer_to_list(N) end,
    case filelib:is_file(Dir) of
        true -> fresh_dir(Base, N + 1);
        false -> Dir
    end.

%% @doc Stops a region's node (like a power cut for its BEAM).
-spec stop_region(region()) -> ok.
stop_region(#{peer := Peer}) ->
    try peer:stop(Peer) catch _:_ -> ok end,
    ok.

%% @doc `M:F(A...)' on a region's node.
-spec call(region(), module(), atom(), list()) -> term().
call(#{peer := Peer}, M, F, A) ->
    peer:call(Peer, M, F, A, 60000).

%% @doc Connects every pair of regions.
-spec connect_all([region()]) -> ok.
connect_all(Regions) ->
    [true = call(A, net_kernel, connect_node, [B]) || #{node := _} = A <- Regions,
                                                       #{node := B} <- Regions, A =/= B,
                                                       maps:get(node, A) < B],
    ok.

%% @doc Cuts the distribution link between two regions (it stays cut: dist_auto_connect once).
-spec partition(region(), region()) -> ok.
partition(A, #{node := B}) ->
    true = call(A, erlang, disconnect_node, [B]),
    ok.

%% @doc Restores the link between two regions.
-spec heal(region(), region()) -> ok.
heal(A, #{node := B}) ->
    true = call(A, net_kernel, connect_node, [B]),
    ok.

%% @doc Polls `Fun' every 20 ms until it returns true; fails the test with the last value
%% after `TimeoutMs'.
-spec wait_until(fun(() -> term()), pos_integer()) -> ok.
wait_until(Fun, TimeoutMs) ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    wait_loop(Fun, Deadline).

wait_loop(Fun, Deadline) ->
    case Fun() of
        true -> ok;
        Other ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> ct:fail({timeout_waiting, Other});
                false -> timer:sleep(20), wait_loop(Fun, Deadline)
            end
    end.
