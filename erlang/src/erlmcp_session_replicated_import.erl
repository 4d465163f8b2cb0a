%%% @doc Copies the sessions of another erlmcp session backend into the replicated store
%%% (`erlmcp_session_replicated:import/2,3'), so that switching backends loses none.
%%%
%%% What is read, given the backend module and its state (what its `init/1' returned, or a
%%% map with the same keys; `table_name' defaults as in erlmcp):
%%% <ul>
%%% <li>`erlmcp_session_ets' (`#{table_name => erlmcp_sessions_ets}'): the named ETS table of
%%%     `{Id, Session}' objects, read in chunks on the node that holds it;</li>
%%% <li>`erlmcp_session_dets' (`#{table_name => erlmcp_sessions_dets, file_path => F}'): the
%%%     DETS table of `{Id, Session}' objects if it is open under that name, else the file
%%%     `file_path', opened read-only for the import;</li>
%%% <li>`erlmcp_session_mnesia' (`#{table_name => erlmcp_session}'): the Mnesia table of
%%%     `{Table, Id, Session, LastAccessed}' records (dirty reads; Mnesia must be running);</li>
%%% <li>any other module: its `list/1' and `fetch/2' callbacks (note that erlmcp's `fetch/2'
%%%     refreshes `last_accessed' in the source).</li>
%%% </ul>
%%% Reading the three known backends directly leaves the source untouched (no
%%% `last_accessed' refresh), so erlmcp can keep serving from it during the import.
%%%
%%% Each session read is either copied (`erlmcp_session_replicated:store/3', durable),
%%% already here (left as it is: once the replicated store holds a session it is the one
%%% that counts, so a rerun changes nothing), expired at the source by erlmcp's rule
%%% (`now - last_accessed > timeout_ms': not copied, it would end at once), ended here (the
%%% replicated store ended that id: an import never brings a session back), or refused (not
%%% a binary id, not a map, a bad field, a store error), with the reason.
%%%
%%% Progress: `progress' is called as `Fun(Done, Total)' after each chunk (of about 256
%%% sessions) that completes another `progress_every' sessions (default 1000), and once
%%% at the end; the default logs a notice. The final count check
%%% reads every copied or already-present id back; the report says how many were read,
%%% in each category, and how many were found (`present'). `{ok, Report}' when every session
%%% read is accounted for and every one that should be here is; `{error, {incomplete,
%%% Report}}' otherwise, with `refused' and `missing' naming the ids.
%%% @hidden
-module(erlmcp_session_replicated_import).

-export([run/3]).

-export_type([options/0, report/0]).

-type options() :: #{progress => fun((non_neg_integer(), non_neg_integer()) -> term()),
                     progress_every => pos_integer()}.
-type report() :: #{source := module(),
                    read := non_neg_integer(),
                    copied := non_neg_integer(),
                    already_here := non_neg_integer(),
                    expired := non_neg_integer(),
                    ended_here := non_neg_integer(),
                    refused := [{term(), term()}],
                    present := non_neg_integer(),
                    missing := [binary()]}.

-define(B, erlmcp_session_replicated).
-define(CHUNK, 256).

%% @doc Runs one import (see the module doc).
-spec run(module(), term(), options()) ->
    {ok, report()} | {error, {incomplete, report()} | {bad_options | bad_source, term()} | term()}.
run(Mod, From, Opts) when is_atom(Mod), is_map(Opts) ->
    case options(Opts) of
        {ok, Progress, Every} ->
            case ?B:init(#{}) of
                {ok, St} -> with_source(Mod, From, fun(Total, Fold) -> copy(Mod, St, Total, Fold, Progress, Every) end);
                {error, _} = E -> E
            end;
        {error, _} = E -> E
    end;
run(Mod, _From, Opts) ->
    {error, {bad_options, {Mod, Opts}}}.

options(Opts) ->
    Every = maps:get(progress_every, Opts, 1000),
    Progress = maps:get(progress, Opts, fun log_progress/2),
    case maps:keys(Opts) -- [progress, progress_every] of
        [] when is_integer(Every), Every > 0, is_function(Progress, 2) -> {ok, Progress, Every};
        _ -> {error, {bad_options, Opts}}
    end.

log_progress(Done, Total) ->
    logger:notice("erlmcp_session_replicated: import ~b of ~b sessions", [Done, Total]).

%%--------------------------------------------------------------------
%% Sources: each gives the number of sessions it holds and a fold over chunks of
%% `{Id, Session}' pairs.

with_source(erlmcp_session_ets, From, Run) when is_map(From) ->
    T = maps:get(table_name, From, maps:get(table, From, erlmcp_sessions_ets)),
    case ets:info(T, size) of
        undefined -> {error, {bad_source, {no_ets_table, T}}};
        Size -> Run(Size, fun(F, Acc) -> ets_chunks(ets:select(T, pairs(), ?CHUNK), F, Acc) end)
    end;
with_source(erlmcp_session_dets, From, Run) when is_map(From) ->
    T = maps:get(table_name, From, erlmcp_sessions_dets),
    case dets:info(T, size) of
        undefined -> dets_file(maps:get(file_path, From, "erlmcp_sessions.dets"), Run);
        Size -> Run(Size, dets_fold(T))
    end;
with_source(erlmcp_session_mnesia, From, Run) when is_map(From) ->
    T = maps:get(table_name, From, erlmcp_session),
    try
        Run(mnesia:table_info(T, size), fun(F, Acc) -> mnesia_chunks(T, mnesia:dirty_all_keys(T), F, Acc) end)
    catch
        exit:{aborted, Reason} -> {error, {bad_source, {mnesia, T, Reason}}}
    end;
with_source(Mod, From, Run) ->
    try Mod:list(From) of
        {ok, Ids, From1} when is_list(Ids) ->
            Run(length(Ids), fun(F, Acc) -> generic_chunks(Mod, From1, Ids, F, Acc) end);
        Other -> {error, {bad_source, {Mod, list, Other}}}
    catch
        error:undef -> {error, {bad_source, {Mod, not_a_backend}}}
    end.

pairs() -> [{{'$1', '$2'}, [], [{{'$1', '$2'}}]}].

ets_chunks('$end_of_table', _F, Acc) -> Acc;
ets_chunks({Pairs, Cont}, F, Acc) -> ets_chunks(ets:select(Cont), F, F(Pairs, Acc)).

dets_file(Path, Run) ->
    Name = {?MODULE, make_ref()},
    case filelib:is_regular(Path) andalso dets:open_file(Name, [{file, Path}, {access, read}]) of
        false -> {error, {bad_source, {no_dets_file, Path}}};
        {ok, Name} ->
            try Run(dets:info(Name, size), dets_fold(Name))
            after _ = dets:close(Name)
            end;
        {error, Reason} -> {error, {bad_source, {dets, Path, Reason}}}
    end.

dets_fold(T) ->
    fun(F, Acc) -> dets_chunks(dets:select(T, pairs(), ?CHUNK), F, Acc) end.

dets_chunks('$end_of_table', _F, Acc) -> Acc;
dets_chunks({error, Reason}, _F, _Acc) -> throw({source_error, Reason});
dets_chunks({Pairs, Cont}, F, Acc) -> dets_chunks(dets:select(Cont), F, F(Pairs, Acc)).

mnesia_chunks(_T, [], _F, Acc) -> Acc;
mnesia_chunks(T, Keys, F, Acc) ->
    {Chunk, Rest} = lists:split(min(?CHUNK, length(Keys)), Keys),
    Pairs = [{Id, Session} || Id <- Chunk, {_, _, Session, _} <- mnesia:dirty_read(T, Id)],
    mnesia_chunks(T, Rest, F, F(Pairs, Acc)).

generic_chunks(_Mod, _From, [], _F, Acc) -> Acc;
generic_chunks(Mod, From, Ids, F, Acc) ->
    {Chunk, Rest} = lists:split(min(?CHUNK, length(Ids)), Ids),
    Pairs = [{Id, Session} || Id <- Chunk, {ok, Session, _} <- [Mod:fetch(Id, From)]],
    generic_chunks(Mod, From, Rest, F, F(Pairs, Acc)).

%%--------------------------------------------------------------------

-record(acc, {read = 0, copied = 0, already = 0, expired = 0, ended = 0,
              refused = [], expect = [], next_report}).

copy(Mod, St, Total, Fold, Progress, Every) ->
    Each = fun(Pairs, Acc) ->
                   Acc1 = lists:foldl(fun count/2, Acc, in_parallel(St, Pairs)),
                   report_progress(Acc1, Total, Progress, Every)
           end,
    try Fold(Each, #acc{next_report = Every}) of
        #acc{read = Read} = A ->
            _ = Progress(Read, max(Total, Read)),
            check(Mod, A)
    catch
        throw:{source_error, Reason} -> {error, {bad_source, {Mod, Reason}}}
    end.

report_progress(#acc{read = Read, next_report = Next} = A, Total, Progress, Every) when Read >= Next ->
    _ = Progress(Read, max(Total, Read)),
    A#acc{next_report = Read - Read rem Every + Every};
report_progress(A, _Total, _Progress, _Every) ->
    A.

%% One process per session of a chunk: each store waits for durability, and the log's group
%% commit makes the waits of a chunk one.
in_parallel(St, Pairs) ->
    Parent = self(),
    Workers = [{spawn_monitor(fun() -> Parent ! {self(), one(St, Id, Session)} end), Id} || {Id, Session} <- Pairs],
    [receive
         {Pid, R} -> erlang:demonitor(Ref, [flush]), R;
         {'DOWN', Ref, process, Pid, Crash} -> {refused, Id, {crashed, Crash}}
     end || {{Pid, Ref}, Id} <- Workers].

one(_St, Id, _Session) when not is_binary(Id); Id =:= <<>> -> {refused, Id, bad_session_id};
one(_St, Id, Session) when not is_map(Session) -> {refused, Id, bad_session};
one(St, Id, Session) ->
    Deadline = deadline(Session),
    case is_integer(Deadline) andalso erlang:system_time(millisecond) > Deadline of
        true -> expired;
        false ->
            case ?B:is_stored(Id) of
                true -> {already, Id, Deadline};
                false ->
                    case ?B:store(Id, Session, St) of
                        {ok, _} -> {copied, Id, Deadline};
                        {error, ended} -> ended;
                        {error, Reason} -> {refused, Id, Reason}
                    end
            end
    end.

%% erlmcp's rule: expired once `now - last_accessed > timeout_ms'.
deadline(#{timeout_ms := T, last_accessed := L}) when is_integer(T), is_integer(L) -> L + T;
deadline(_) -> infinity.

count(expired, A) -> A#acc{read = A#acc.read + 1, expired = A#acc.expired + 1};
count(ended, A) -> A#acc{read = A#acc.read + 1, ended = A#acc.ended + 1};
count({already, Id, D}, A) -> A#acc{read = A#acc.read + 1, already = A#acc.already + 1, expect = [{Id, D} | A#acc.expect]};
count({copied, Id, D}, A) -> A#acc{read = A#acc.read + 1, copied = A#acc.copied + 1, expect = [{Id, D} | A#acc.expect]};
count({refused, Id, R}, A) -> A#acc{read = A#acc.read + 1, refused = [{Id, R} | A#acc.refused]}.

%% The final count check: every session that should be here is read back (one that reached
%% its deadline since it was copied is counted as expired instead).
check(Mod, #acc{read = Read, copied = C, already = Al, expired = Ex, ended = En, refused = Ref, expect = Expect}) ->
    Now = erlang:system_time(millisecond),
    {Present, Missing, Lapsed} =
        lists:foldl(fun({Id, D}, {P, M, L}) ->
                            case ?B:is_stored(Id) of
                                true -> {P + 1, M, L};
                                false when is_integer(D), Now > D -> {P, M, L + 1};
                                false -> {P, [Id | M], L}
                            end
                    end, {0, [], 0}, Expect),
    Report = #{source => Mod, read => Read, copied => C, already_here => Al, expired => Ex + Lapsed,
               ended_here => En, refused => lists:reverse(Ref), present => Present,
               missing => lists:sort(Missing)},
    Accounted = C + Al + Ex + En + length(Ref) =:= Read,
    case Accounted andalso Ref =:= [] andalso Missing =:= [] andalso Present + Lapsed =:= C + Al of
        true -> {ok, Report};
        false -> {error, {incomplete, Report}}
    end.
