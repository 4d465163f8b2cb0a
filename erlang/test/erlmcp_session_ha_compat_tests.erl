%%% @hidden
%%% EUnit tests of the pure parts of the erlmcp compatibility layer.
-module(erlmcp_session_ha_compat_tests).

-include_lib("eunit/include/eunit.hrl").

region_names_map_to_erlmcp_region_atoms_test() ->
    ?assertEqual(primary, erlmcp_session_ha_compat:region_role(<<"primary">>)),
    ?assertEqual(secondary, erlmcp_session_ha_compat:region_role(<<"secondary">>)),
    ?assertEqual(tertiary, erlmcp_session_ha_compat:region_role(<<"tertiary">>)).

any_other_region_is_a_secondary_test() ->
    [?assertEqual(secondary, erlmcp_session_ha_compat:region_role(R))
     || R <- [<<"us-east-1">>, <<"eu-central-1">>, <<"Primary">>, <<>>]].
