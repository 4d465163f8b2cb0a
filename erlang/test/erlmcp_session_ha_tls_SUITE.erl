%%% @doc Replication between regions over TLS distribution (`-proto_dist inet_tls', OTP's
%%% `ssl'), with certificates this suite makes with `public_key' and an `ssl_dist_optfile'
%%% like the README's: each side verifies the other's certificate against the cluster CA.
%%%
%%% Every region is an OTP `peer' node on TLS, driven over its standard I/O: the test node
%%% itself runs plain distribution (rebar3 ct starts it) and never joins the cluster. The
%%% replication cases of `erlmcp_session_ha_replication_cases' run unchanged over TLS; each
%%% time their regions are connected, every distribution link between them is checked to be
%%% one that `inet_tls_dist' set up. Then the proofs that TLS is what carries the traffic and
%%% what guards the door:
%%%
%%% - a wiretap between two regions sees nothing but TLS records and not one byte of a
%%%   replicated session, where the same wiretap on plain distribution sees both (the
%%%   control, proving the wiretap would see cleartext);
%%% - a node that joins with the cluster's certificate connects (the control for the
%%%   refusals), and the cluster refuses a plain TCP node, a TLS node without a
%%%   certificate, one with a certificate of another CA (whichever side dials), and, when it
%%%   dials, a server whose certificate names another host; each refusal is the TLS alert
%%%   the cluster node logs, not a timeout or a wrong cookie.
-module(erlmcp_session_ha_tls_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("public_key/include/public_key.hrl").
-include_lib("kernel/include/net_address.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([wire_carries_only_tls_records_and_no_session_bytes/1,
         wiretap_sees_session_bytes_on_plain_distribution/1,
         node_with_the_cluster_certificate_connects/1,
         plain_tcp_node_is_refused/1,
         node_without_a_certificate_is_refused/1,
         node_with_a_certificate_of_another_ca_is_refused/1,
         cluster_node_refuses_a_server_certificate_of_another_ca/1,
         cluster_node_refuses_a_server_certificate_for_another_host/1]).

-include("erlmcp_session_ha_replication_cases.hrl").

-define(CT, erlmcp_session_ha_ct).
-define(S, erlmcp_session_ha).
-define(WIRETAP, erlmcp_session_ha_wiretap).
-define(LOOPBACK, {127, 0, 0, 1}).

all() ->
    [wire_carries_only_tls_records_and_no_session_bytes,
     wiretap_sees_session_bytes_on_plain_distribution,
     node_with_the_cluster_certificate_connects,
     plain_tcp_node_is_refused,
     node_without_a_certificate_is_refused,
     node_with_a_certificate_of_another_ca_is_refused,
     cluster_node_refuses_a_server_certificate_of_another_ca,
     cluster_node_refuses_a_server_certificate_for_another_host
     | ?REPLICATION_CASES:all()].

init_per_suite(Config) ->
    case is_alive() of
        true ->
            Dir = filename:join(?config(priv_dir, Config), "tls"),
            Files = make_certificates(Dir),
            [{tls_files, Files},
             {node_args, tls_args(maps:get(cluster, Files))},
             {on_connected, fun tls_links/1}
             | Config];
        false ->
            {skip, "needs a distributed node: run rebar3 ct --sname NAME"}
    end.

end_per_suite(_Config) ->
    ok.

%% Region nodes are linked to the test case process: they stop with it.
init_per_testcase(Case, Config) ->
    ?CT:case_dir(Case, Config).

end_per_testcase(_Case, _Config) ->
    ok.

%%--------------------------------------------------------------------
%% Certificates and option files

%% A cluster CA and a node certificate it signed, with the name of this host (the host part
%% of every test node's name) as its subjectAltName; one it signed for another host; another
%% CA and a node certificate of its own. Option files: the cluster's, one without a
%% certificate, one with the other host's certificate and one with the other CA's (both
%% trusting the cluster CA, so that only the cluster node's own check can refuse them).
make_certificates(Dir) ->
    ok = filelib:ensure_path(Dir),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    ClusterCa = public_key:pkix_test_root_cert("session-ha test cluster CA", cert_opts()),
    OtherCa = public_key:pkix_test_root_cert("another CA", cert_opts()),
    CaFile = write_pem(Dir, "cluster-ca.pem", [{'Certificate', maps:get(cert, ClusterCa), not_encrypted}]),
    Verify = [{cacertfile, CaFile}, {verify, verify_peer}],
    WithCert = fun(Name, Ca, CertHost) ->
                       {Cert, Key} = node_certificate(Dir, Name, Ca, CertHost),
                       optfile(Dir, Name ++ ".conf", [{certfile, Cert}, {keyfile, Key} | Verify])
               end,
    #{cluster => WithCert("node", ClusterCa, Host),
      other_host => WithCert("other-host-node", ClusterCa, "not-this-host.invalid"),
      other_ca => WithCert("other-ca-node", OtherCa, Host),
      no_certificate => optfile(Dir, "no-certificate.conf", Verify)}.

%% ECDSA P-256 keys, SHA-256 signatures (OTP 27 refuses public_key's default, SHA-1).
cert_opts() ->
    [{key, {namedCurve, ?'secp256r1'}}, {digest, sha256}].

node_certificate(Dir, Name, Ca, Host) ->
    AltName = #'Extension'{extnID = ?'id-ce-subjectAltName', extnValue = [{dNSName, Host}],
                           critical = false},
    Conf = public_key:pkix_test_data(#{root => Ca, intermediates => [],
                                       peer => [{extensions, [AltName]} | cert_opts()]}),
    {cert, Der} = lists:keyfind(cert, 1, Conf),
    {key, {KeyType, KeyDer}} = lists:keyfind(key, 1, Conf),
    {write_pem(Dir, Name ++ ".pem", [{'Certificate', Der, not_encrypted}]),
     write_pem(Dir, Name ++ ".key", [{KeyType, KeyDer, not_encrypted}])}.

write_pem(Dir, Name, Entries) ->
    File = filename:join(Dir, Name),
    ok = file:write_file(File, public_key:pem_encode(Entries)),
    File.

%% The same options for both roles; as a server, also refuse a client without a certificate.
optfile(Dir, Name, Opts) ->
    File = filename:join(Dir, Name),
    Terms = [{server, Opts ++ [{fail_if_no_peer_cert, true}]}, {client, Opts}],
    ok = file:write_file(File, io_lib:format("~p.~n", [Terms])),
    File.

tls_args(OptFile) ->
    ["-proto_dist", "inet_tls", "-ssl_dist_optfile", OptFile].

%%--------------------------------------------------------------------
%% Checks

%% Every region runs TLS distribution, is connected to every other, and every link it has
%% was set up by inet_tls_dist; the test node (plain distribution) is connected to none.
tls_links(Regions) ->
    Nodes = [N || #{node := N} <- Regions],
    [begin
         ?assertEqual({ok, [["inet_tls"]]}, ?CT:call(R, init, get_argument, [proto_dist])),
         Linked = ?CT:call(R, erlang, nodes, []),
         ?assertEqual([], (Nodes -- [Self]) -- Linked),
         [?assertMatch(#net_address{protocol = tls}, link_address(R, N)) || N <- Linked]
     end || #{node := Self} = R <- Regions],
    ?assertEqual([], [N || N <- nodes(), lists:member(N, Nodes)]),
    ok.

link_address(Region, Node) ->
    {ok, Info} = ?CT:call(Region, net_kernel, node_info, [Node]),
    proplists:get_value(address, Info).

%% Splits a byte stream into TLS records (type 20 to 23, version 3.x): `{ok, Summary}' when
%% every byte belongs to one (the last one may still have been on its way), `{error,
%% {not_tls, Offset}}' at the first byte that does not.
tls_records(Bin) ->
    tls_records(Bin, 0, #{records => 0, application_data_bytes => 0}).

tls_records(<<Type, 3, Minor, Len:16, _:Len/binary, Rest/binary>>, Offset, Acc)
  when Type >= 20, Type =< 23, Minor =< 4 ->
    #{records := N, application_data_bytes := App} = Acc,
    tls_records(Rest, Offset + 5 + Len,
                Acc#{records := N + 1,
                     application_data_bytes := App + case Type of 23 -> Len; _ -> 0 end});
tls_records(<<>>, _, Acc) ->
    {ok, Acc};
tls_records(<<Type, 3, Minor, _/binary>> = Tail, _, Acc)
  when Type >= 20, Type =< 23, Minor =< 4, byte_size(Tail) >= 5 ->
    {ok, Acc};  %% the last record, partly forwarded so far
tls_records(Tail, _, Acc) when byte_size(Tail) < 5 ->
    {ok, Acc};
tls_records(_, Offset, _) ->
    {error, {not_tls, Offset}}.

%% The version the server chose, from its ServerHello (the first record it sent): the
%% supported_versions extension (TLS 1.3), else the legacy version field.
negotiated_version(<<22, 3, _, Len:16, Handshake:Len/binary, _/binary>>) ->
    <<2, _:24, Legacy:16, _Random:32/binary, SidLen, _:SidLen/binary, _Suite:16, _Compression,
      ExtLen:16, Exts:ExtLen/binary, _/binary>> = Handshake,
    version_name(supported_version(Exts, Legacy)).

supported_version(<<43:16, 2:16, Version:16, _/binary>>, _) -> Version;
supported_version(<<_:16, Len:16, _:Len/binary, Rest/binary>>, Legacy) -> supported_version(Rest, Legacy);
supported_version(<<>>, Legacy) -> Legacy.

version_name(16#0304) -> 'tlsv1.3';
version_name(16#0303) -> 'tlsv1.2';
version_name(Other) -> {unexpected, Other}.

%%--------------------------------------------------------------------
%% The wire

wire_carries_only_tls_records_and_no_session_bytes(Config) ->
    {Regions, Secret, FromClient, FromServer} = tapped_replication(Config),
    ok = tls_links(Regions),
    {ok, #{application_data_bytes := Sent} = Up} = tls_records(FromClient),
    {ok, Down} = tls_records(FromServer),
    ct:pal("through the wiretap: ~p bytes up (~p), ~p bytes down (~p), ~p",
           [byte_size(FromClient), Up, byte_size(FromServer), Down, negotiated_version(FromServer)]),
    %% both handshakes open the streams; the session went through as application data
    ?assertMatch(<<22, _/binary>>, FromClient),
    ?assertMatch(<<22, _/binary>>, FromServer),
    ?assert(Sent > byte_size(Secret)),
    ?assert(lists:member(negotiated_version(FromServer), ['tlsv1.2', 'tlsv1.3'])),
    ?assertEqual(nomatch, binary:match(FromClient, Secret)),
    ?assertEqual(nomatch, binary:match(FromServer, Secret)),
    ok.

%% The control: the same wiretap on plain distribution sees the session's bytes.
wiretap_sees_session_bytes_on_plain_distribution(Config) ->
    Plain = [{node_args, []}, {on_connected, fun(_) -> ok end} | Config],
    {_, Secret, FromClient, _} = tapped_replication(Plain),
    ?assertMatch({error, {not_tls, 0}}, tls_records(FromClient)),
    ?assertNotEqual(nomatch, binary:match(FromClient, Secret)),
    ok.

%% Two regions; the first reaches the second only through the wiretap. A session written in
%% the first, with random bytes as its value, must arrive in the second. Returns the
%% regions, the value and what the wiretap saw each way.
tapped_replication(Config) ->
    B = ?CT:start_region(Config, <<"us-west-2">>, #{}),
    [BName, _] = string:split(atom_to_list(maps:get(node, B)), "@"),
    {port, BPort, _} = erl_epmd:port_please(BName, ?LOOPBACK),
    {Relay, RelayPort} = ?WIRETAP:start(BPort),
    Tapped = [{node_args, proplists:get_value(node_args, Config) ++ ?WIRETAP:node_args(BName, RelayPort)}
              | Config],
    A = ?CT:start_region(Tapped, <<"us-east-1">>, #{}),
    true = ?CT:call(A, net_kernel, connect_node, [maps:get(node, B)]),
    [?CT:wait_until(fun() -> [x || #{connected := true} <- ?CT:call(R, ?S, peers, [])] =:= [x] end, 10000)
     || R <- [A, B]],
    Secret = crypto:strong_rand_bytes(24),
    Sid = <<"wiretap-", (binary:encode_hex(Secret))/binary>>,
    ok = ?CT:call(A, ?S, put, [Sid, <<"secret">>, Secret]),
    ok = ?CT:call(A, ?S, force_sync, [10000]),
    ?assertEqual({ok, Secret}, ?CT:call(B, ?S, get, [Sid, <<"secret">>])),
    {FromClient, FromServer} = ?WIRETAP:captured(Relay),
    {[A, B], Secret, FromClient, FromServer}.

%%--------------------------------------------------------------------
%% The door

node_with_the_cluster_certificate_connects(Config) ->
    [A] = ?CT:start_regions(Config, [<<"us-east-1">>], #{}),
    {Stranger, Node} = stranger(tls_args(tls_file(Config, cluster))),
    ?assert(peer:call(Stranger, net_kernel, connect_node, [maps:get(node, A)])),
    ?CT:wait_until(fun() -> lists:member(Node, ?CT:call(A, erlang, nodes, [])) end, 5000),
    ?assertMatch(#net_address{protocol = tls}, link_address(A, Node)),
    ok.

plain_tcp_node_is_refused(Config) ->
    refused(Config, [], stranger, ["unsupported_record_type"]).

%% TLS 1.2 (distribution's default on OTP 25 and 27) and TLS 1.3 (OTP 29) say it apart.
node_without_a_certificate_is_refused(Config) ->
    refused(Config, tls_args(tls_file(Config, no_certificate)), stranger,
            ["no_client_certificate_provided", "certificate_required"]).

node_with_a_certificate_of_another_ca_is_refused(Config) ->
    refused(Config, tls_args(tls_file(Config, other_ca)), stranger, ["Unknown CA"]).

cluster_node_refuses_a_server_certificate_of_another_ca(Config) ->
    refused(Config, tls_args(tls_file(Config, other_ca)), region, ["Unknown CA"]).

%% The dialing side checks that the certificate names the host it dialed (the host part of
%% the node name); the accepting side checks the CA only, so the same node, dialing,
%% joins.
cluster_node_refuses_a_server_certificate_for_another_host(Config) ->
    {A, Stranger} = refused(Config, tls_args(tls_file(Config, other_host)), region,
                            ["hostname_check_failed"]),
    ?assert(peer:call(Stranger, net_kernel, connect_node, [maps:get(node, A)])).

%% A region and a node started with `Args': the one that dials (`stranger' or `region') is
%% refused, and the region logs one of `Reasons' as the TLS server or client it was.
%% Returns both.
refused(Config, Args, Dialer, Reasons) ->
    [A] = ?CT:start_regions(Config, [<<"us-east-1">>], #{}),
    Log = alert_log(Config, A),
    {Stranger, Node} = stranger(Args),
    {Connected, Side} =
        case Dialer of
            stranger -> {peer:call(Stranger, net_kernel, connect_node, [maps:get(node, A)]), "TLS server"};
            region -> {?CT:call(A, net_kernel, connect_node, [Node]), "TLS client"}
        end,
    ?assertNot(Connected),
    ?assertEqual([], peer:call(Stranger, erlang, nodes, [])),
    ?assertNot(lists:member(Node, ?CT:call(A, erlang, nodes, []))),
    wait_logged(A, Log, Side, Reasons),
    {A, Stranger}.

%% A bare node (no server) with the cluster's cookie and `Args', driven over standard I/O.
stranger(Args) ->
    {ok, Peer, Node} = peer:start_link(#{name => peer:random_name("stranger"),
                                         connection => standard_io,
                                         args => ?CT:node_args() ++ Args}),
    {Peer, Node}.

tls_file(Config, Which) ->
    maps:get(Which, ?config(tls_files, Config)).

%% The region's log events, one a line, to a file in the case's directory (TLS alerts are
%% logged at notice).
alert_log(Config, Region) ->
    File = filename:join(?config(case_dir, Config), binary_to_list(maps:get(region, Region)) ++ ".log"),
    ok = ?CT:call(Region, logger, add_handler,
                  [sha_tls_alerts, logger_std_h,
                   #{config => #{file => File},
                     formatter => {logger_formatter, #{single_line => true}}}]),
    File.

%% Waits for an event that names the TLS side (client or server) and one of the reasons.
wait_logged(Region, File, Side, Reasons) ->
    ?CT:wait_until(fun() ->
                           _ = ?CT:call(Region, logger_std_h, filesync, [sha_tls_alerts]),
                           {ok, Log} = file:read_file(File),
                           Lines = binary:split(Log, <<"\n">>, [global]),
                           lists:any(fun(L) ->
                                             contains(L, Side) andalso
                                                 lists:any(fun(R) -> contains(L, R) end, Reasons)
                                     end, Lines)
                               orelse Log
                   end, 5000).

contains(Bin, String) ->
    binary:match(Bin, list_to_binary(String)) =/= nomatch.
