%%% @doc A host supervisor holding one child spec, as erlmcp's own tree does.
-module(erlmcp_session_ha_SUITE_sup).
-behaviour(supervisor).
-export([init/1]).

init(Spec) ->
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, [Spec]}}.
