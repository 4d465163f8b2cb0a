%%% @doc EUnit for the trust options and safe decoding: `auth_key_file' and
%%% `max_clock_skew_ms' are validated with the other options and become the NIF's frame
%%% keys; stored values decode with `[safe]' into typed errors.
-module(erlmcp_session_ha_trust_tests).

-include_lib("eunit/include/eunit.hrl").

-define(O, erlmcp_session_ha_opts).
-define(T, erlmcp_session_ha_term).

defaults_derive_the_frame_key_from_the_cookie_test() ->
    {ok, Opts} = ?O:normalize(#{region => <<"r">>}),
    ?assertMatch(#{auth_key_file := cookie, max_clock_skew_ms := 60000}, Opts),
    Cookie = atom_to_binary(erlang:get_cookie(), utf8),
    ?assertMatch(#{frame_keys := {secrets, [Cookie]}, max_clock_skew_ms := 60000},
                 ?O:nif_opts(Opts)).

a_key_file_is_passed_as_a_path_test() ->
    {ok, Opts} = ?O:normalize(#{region => <<"r">>, auth_key_file => "/etc/k"}),
    ?assertMatch(#{frame_keys := {file, <<"/etc/k">>}}, ?O:nif_opts(Opts)).

bad_trust_options_are_refused_test_() ->
    [?_assertMatch({error, {bad_option, K, _}}, ?O:normalize(#{region => <<"r">>, K => V}))
     || {K, V} <- [{auth_key_file, <<>>}, {auth_key_file, 42}, {auth_key_file, []},
                   {max_clock_skew_ms, 0}, {max_clock_skew_ms, -5}, {max_clock_skew_ms, soon}]].

safe_decoding_refuses_new_atoms_and_garbage_test() ->
    ?assertEqual({ok, {ok, 1}}, ?T:decode(term_to_binary({ok, 1}))),
    Name = <<"erlmcp_session_ha_trust_tests_never_made_", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
    NewAtom = <<131, 118, (byte_size(Name)):16, Name/binary>>,
    ?assertEqual({error, undecodable}, ?T:decode(NewAtom)),
    ?assertError(badarg, binary_to_existing_atom(Name, utf8)),
    ?assertEqual({error, undecodable}, ?T:decode(<<131, 255>>)),
    ?assertEqual({error, undecodable}, ?T:decode(<<>>)),
    ?assertEqual({error, {undecodable, <<"b">>}},
                 ?T:decode_values(#{<<"a">> => term_to_binary(1), <<"b">> => <<"junk">>})),
    ?assertEqual({ok, #{<<"a">> => 1}}, ?T:decode_values(#{<<"a">> => term_to_binary(1)})),
    ?assertEqual({error, {undecodable, <<"set">>}},
                 ?T:decode_list(<<"set">>, [term_to_binary(1), <<"junk">>])),
    ?assertEqual({ok, [1, 2]}, ?T:decode_list(<<"set">>, [term_to_binary(1), term_to_binary(2)])).
