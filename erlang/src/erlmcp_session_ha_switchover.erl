%%% @doc Switching a live erlmcp cluster from erlmcp's own ETS-based `erlmcp_session_ha' to
%%% this library one node at a time, losing no session.
%%%
%%% While the cluster is mixed, `erlmcp_session_ha_compat' keeps sessions flowing both ways
%%% (records from erlmcp's nodes are stored here; sessions started here are stored on
%%% them). Before a node running erlmcp's module is stopped, {@link copy_sessions/1} run on
%%% a node of this library copies every session that node holds, so sessions it never
%%% managed to replicate (erlmcp's module replicates asynchronously and gives up after
%%% three tries) survive the switch. For the first node switched, when no node runs this
%%% library yet, the node's table is saved with `ets:tab2file(erlmcp_session_ha, File)'
%%% before the restart and copied from the file after it. README: "Switching a live
%%% cluster over" has the procedure.
%%%
%%% What is assumed of erlmcp's module (from its documented API and message shapes): its
%%% sessions are `#session_info{}' records (erlmcp_session_ha.hrl) in a public named ETS
%%% table `erlmcp_session_ha' keyed on `session_id'; anything else in that table (its retry
%%% counters) is not a session and is skipped.
%%% @end
-module(erlmcp_session_ha_switchover).

-export([copy_sessions/1]).

-export_type([source/0, report/0]).

-include("erlmcp_session_ha.hrl").

-define(TABLE, erlmcp_session_ha).
-define(RPC_TIMEOUT, 60000).

-type source() :: node() | {file, file:filename_all()}.
-type report() :: #{source := source(), read := non_neg_integer(), stored := non_neg_integer(),
                    present := non_neg_integer(), missing := [binary()],
                    refused := [{term(), term()}]}.

%% @doc Copies every session held by erlmcp's module on `Node' (a connected node), or saved
%% from it with `ets:tab2file/2' in `{file, File}', into this node's store. A session held
%% here with a newer `last_updated' is kept as it is, so the copy is idempotent. Ends with a
%% count check: every session read must be readable here. `{ok, Report}', or
%% `{error, {incomplete, Report}}' naming the sessions refused or missing, or
%% `{error, {unreachable | bad_file, Reason}}' when nothing could be read.
-spec copy_sessions(source()) ->
    {ok, report()} | {error, {incomplete, report()} | {unreachable | bad_file, term()}}.
copy_sessions(Source) ->
    case read(Source) of
        {ok, Records} -> copy(Source, Records);
        {error, _} = E -> E
    end.

read({file, File}) ->
    case ets:file2tab(File) of
        {ok, T} ->
            try {ok, ets:select(T, match_sessions())}
            after ets:delete(T)
            end;
        {error, Reason} -> {error, {bad_file, Reason}}
    end;
read(Node) when is_atom(Node) ->
    try {ok, erpc:call(Node, ets, select, [?TABLE, match_sessions()], ?RPC_TIMEOUT)}
    catch
        Class:Reason -> {error, {unreachable, {Node, Class, Reason}}}
    end.

%% Every `#session_info{}' record (the table also holds erlmcp's retry counters).
match_sessions() ->
    [{erlang:make_tuple(record_info(size, session_info), '_', [{1, session_info}]), [], ['$_']}].

copy(Source, Records) ->
    Results = [{Sid, erlmcp_session_ha_compat:store_session(R)} || #session_info{session_id = Sid} = R <- Records],
    Refused = [{Sid, Reason} || {Sid, {error, Reason}} <- Results],
    Stored = [Sid || {Sid, ok} <- Results],
    Missing = [Sid || Sid <- Stored, erlmcp_session_ha:get(Sid, <<"created_at">>) =:= {error, not_found}],
    Report = #{source => Source, read => length(Records), stored => length(Stored),
               present => length(Stored) - length(Missing), missing => lists:sort(Missing),
               refused => Refused},
    case Refused =:= [] andalso Missing =:= [] of
        true -> {ok, Report};
        false -> {error, {incomplete, Report}}
    end.
