%%% @doc Runs `erlmcp_session_ha' on a node that has no host supervision tree for it (the DR
%%% drill, tools, tests): a one-child supervisor, registered as
%%% `erlmcp_session_ha_standalone' and not linked to the caller. A host application puts
%%% `erlmcp_session_ha:child_spec/1' in its own tree instead.
%%% @hidden
-module(erlmcp_session_ha_standalone).
-behaviour(supervisor).

-export([start/1, stop/0, init/1]).

%% @doc Starts the supervisor and the server with `Opts'.
-spec start(map()) -> {ok, pid()} | {error, term()}.
start(Opts) ->
    case supervisor:start_link({local, ?MODULE}, ?MODULE, Opts) of
        {ok, Sup} -> true = unlink(Sup), {ok, Sup};
        {error, _} = E -> E
    end.

%% @doc Stops the supervisor (the server closes its store).
-spec stop() -> ok.
stop() ->
    case whereis(?MODULE) of
        undefined -> ok;
        Sup ->
            %% Not exit/2: a supervisor ignores exit signals from anyone but its parent.
            try gen_server:stop(Sup, shutdown, 30000) catch exit:noproc -> ok end
    end.

%% @hidden
init(Opts) ->
    {ok, {#{strategy => one_for_one, intensity => 10, period => 10},
          [erlmcp_session_ha:child_spec(Opts)]}}.
