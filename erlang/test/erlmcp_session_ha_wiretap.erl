%%% @doc A wiretap for the TLS suite: what one distribution connection carries on the wire.
%%%
%%% Two halves. On the test node, {@link start/1} runs a TCP relay that accepts one
%%% connection, forwards it to a node's distribution port and keeps every byte it forwards,
%%% each direction apart ({@link captured/1}). On the tapped node, this module is the epmd
%%% module (`-epmd_module erlmcp_session_ha_wiretap', arguments from {@link node_args/2}):
%%% when that node looks up the one node name it was given, it is told the relay's port, so
%%% its connection to that node goes through the relay; every other call is OTP's `erl_epmd'.
%%% Both ends speak to each other as they would without it (the relay changes no byte).
-module(erlmcp_session_ha_wiretap).

%% The relay, on the test node.
-export([start/1, captured/1, node_args/2]).
%% The epmd module, on the tapped node.
-export([start_link/0, register_node/2, register_node/3, port_please/2, port_please/3,
         address_please/3, listen_port_please/2, names/0, names/1]).

-define(LOOPBACK, {127, 0, 0, 1}).
%% The distribution protocol version epmd reports for OTP 23 and later.
-define(DIST_VERSION, 6).

%%--------------------------------------------------------------------
%% The relay

%% @doc Starts a relay (linked to the caller) to `TargetPort' on the loopback address;
%% returns it and the port it listens on.
-spec start(inet:port_number()) -> {pid(), inet:port_number()}.
start(TargetPort) ->
    Owner = self(),
    Relay = spawn_link(fun() -> relay_init(Owner, TargetPort) end),
    receive
        {Relay, listening, Port} -> {Relay, Port}
    after 5000 -> error(relay_did_not_start)
    end.

%% @doc What the relay has forwarded so far: `{FromClient, FromServer}', the bytes the
%% connecting node sent and the bytes the node it connected to sent back.
-spec captured(pid()) -> {binary(), binary()}.
captured(Relay) ->
    Ref = make_ref(),
    Relay ! {captured, self(), Ref},
    receive
        {Ref, FromClient, FromServer} -> {FromClient, FromServer}
    after 5000 -> error(relay_did_not_answer)
    end.

%% @doc Emulator arguments that make a node reach the node named `NodeName' (the part
%% before the `@') through the relay listening on `RelayPort'.
-spec node_args(string(), inet:port_number()) -> [string()].
node_args(NodeName, RelayPort) ->
    ["-epmd_module", atom_to_list(?MODULE),
     "-sha_wiretap", NodeName, integer_to_list(RelayPort)].

relay_init(Owner, TargetPort) ->
    {ok, Listen} = gen_tcp:listen(0, [binary, {ip, ?LOOPBACK}, {active, false}]),
    {ok, Port} = inet:port(Listen),
    Owner ! {self(), listening, Port},
    {ok, Client} = gen_tcp:accept(Listen, 30000),
    ok = gen_tcp:close(Listen),
    {ok, Server} = gen_tcp:connect(?LOOPBACK, TargetPort, [binary, {active, true}, {nodelay, true}]),
    ok = inet:setopts(Client, [{active, true}, {nodelay, true}]),
    relay(Client, Server, <<>>, <<>>).

relay(Client, Server, FromClient, FromServer) ->
    receive
        {tcp, Client, Data} ->
            _ = gen_tcp:send(Server, Data),
            relay(Client, Server, <<FromClient/binary, Data/binary>>, FromServer);
        {tcp, Server, Data} ->
            _ = gen_tcp:send(Client, Data),
            relay(Client, Server, FromClient, <<FromServer/binary, Data/binary>>);
        {tcp_closed, _} ->
            _ = gen_tcp:close(Client),
            _ = gen_tcp:close(Server),
            closed(FromClient, FromServer);
        {captured, From, Ref} ->
            From ! {Ref, FromClient, FromServer},
            relay(Client, Server, FromClient, FromServer)
    end.

closed(FromClient, FromServer) ->
    receive
        {captured, From, Ref} ->
            From ! {Ref, FromClient, FromServer},
            closed(FromClient, FromServer);
        _ ->
            closed(FromClient, FromServer)
    end.

%%--------------------------------------------------------------------
%% The epmd module

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    erl_epmd:start_link().

-spec register_node(term(), term()) -> term().
register_node(Name, Port) ->
    erl_epmd:register_node(Name, Port).

-spec register_node(term(), term(), term()) -> term().
register_node(Name, Port, Family) ->
    erl_epmd:register_node(Name, Port, Family).

-spec listen_port_please(term(), term()) -> term().
listen_port_please(Name, Host) ->
    erl_epmd:listen_port_please(Name, Host).

-spec names() -> term().
names() ->
    erl_epmd:names().

-spec names(term()) -> term().
names(Host) ->
    erl_epmd:names(Host).

-spec port_please(term(), term()) -> term().
port_please(Name, Ip) ->
    port_please(Name, Ip, infinity).

-spec port_please(term(), term(), timeout()) -> term().
port_please(Name, Ip, Timeout) ->
    case relay_port(Name) of
        {ok, Port} -> {port, Port, ?DIST_VERSION};
        none -> erl_epmd:port_please(Name, Ip, Timeout)
    end.

-spec address_please(term(), term(), term()) -> term().
address_please(Name, Host, Family) ->
    case relay_port(Name) of
        {ok, Port} -> {ok, ?LOOPBACK, Port, ?DIST_VERSION};
        none -> erl_epmd:address_please(Name, Host, Family)
    end.

relay_port(Name) ->
    Tapped = case init:get_argument(sha_wiretap) of
                 {ok, [[N, P]]} -> {N, list_to_integer(P)};
                 _ -> none
             end,
    case {Tapped, to_list(Name)} of
        {{Same, Port}, Same} -> {ok, Port};
        _ -> none
    end.

to_list(Name) when is_atom(Name) -> atom_to_list(Name);
to_list(Name) when is_binary(Name) -> binary_to_list(Name);
to_list(Name) -> Name.
