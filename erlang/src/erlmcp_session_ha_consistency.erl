%%% @doc Consistency between regions, run in the caller's process (never inside a server,
%%% so two nodes validating each other at once cannot deadlock): compare digest roots with
%%% every connected peer; where they differ, compare the 256 middle sums (4 KiB), then the
%%% leaf sums under the middle buckets that differ (4 KiB each), then the session digests of
%%% the differing leaves, and name exactly the differing sessions: what crosses the wire
%%% grows with the differences, not with the store. `repair/2' exchanges the full state of
%%% those sessions both ways, in frames within the frame budget, and validates again.
%%% @hidden
-module(erlmcp_session_ha_consistency).

-export([validate/2, repair/2, answer/2]).

-include("erlmcp_session_ha.hrl").

-define(SERVER, erlmcp_session_ha).

%% @doc Compares this node's digests with every peer in `Peers' (`[{Node, ReplicaId}]').
-spec validate(reference(), [{node(), non_neg_integer()}]) ->
    {ok, #{peers := [node()], sessions := non_neg_integer()}} |
    {error, {inconsistent, #{node() => [binary()] | unreachable | {unavailable, term()}}}}.
validate(H, Peers) ->
    %% In-flight replication is not inconsistency: give it a moment to land first.
    _ = try erlmcp_session_ha:force_sync(2000) catch _:_ -> ok end,
    Results = [{Node, compare(H, Node)} || {Node, _} <- Peers],
    Diffs = maps:from_list([{N, D} || {N, D} <- Results, D =/= []]),
    case maps:size(Diffs) of
        0 ->
            #{live_sessions := Live} = erlmcp_session_ha_nif:status(H),
            {ok, #{peers => [N || {N, _} <- Peers], sessions => Live}};
        _ ->
            {error, {inconsistent, Diffs}}
    end.

compare(H, Node) ->
    try
        case {erlmcp_session_ha_nif:digest_root(H), ask(Node, root)} of
            {Root, Root} when is_binary(Root) -> [];
            {Root, Theirs} when is_binary(Root), is_binary(Theirs) -> differing(H, Node);
            {Root, Theirs} -> {unavailable, first_error([Root, Theirs])}
        end
    catch
        exit:_ -> unreachable
    end.

%% Below differing roots: the middle level, the leaves under what differs, the sessions. An
%% answer that is an error (a store that failed serves nothing) makes the peer unavailable.
differing(H, Node) ->
    try
        Mids = ok_list(erlmcp_session_ha_nif:digest_diff_mids(H, ok_bin(ask(Node, mids)))),
        Theirs = ok_bin(ask(Node, {leaves_under, Mids})),
        Leaves = ok_list(erlmcp_session_ha_nif:digest_diff_leaves_under(H, Mids, Theirs)),
        Mine = ok_list(erlmcp_session_ha_nif:digest_entries(H, Leaves)),
        diff_entries(Mine, ok_list(ask(Node, {entries, Leaves})))
    catch
        throw:{unavailable, _} = Unavailable -> Unavailable
    end.

ok_bin(B) when is_binary(B) -> B;
ok_bin(Other) -> throw({unavailable, Other}).

ok_list(L) when is_list(L) -> L;
ok_list(Other) -> throw({unavailable, Other}).

first_error(Answers) ->
    case [A || A <- Answers, not is_binary(A)] of
        [E | _] -> E;
        [] -> undefined
    end.

ask(Node, Request) ->
    gen_server:call({?SERVER, Node}, {digest, Request}, ?SHA_CALL_TIMEOUT).

%% Sessions whose digests differ between two entry lists, sorted.
diff_entries(Mine, Theirs) ->
    A = maps:from_list(Mine),
    B = maps:from_list(Theirs),
    Ids = lists:usort(maps:keys(A) ++ maps:keys(B)),
    [Id || Id <- Ids, maps:find(Id, A) =/= maps:find(Id, B)].

%% @doc What a peer asks this node's server while validating (`{digest, Request}').
-spec answer(reference(), root | mids | leaves | {leaves_under, [0..255]} |
                         {entries, [0..65535]}) -> term().
answer(H, root) -> erlmcp_session_ha_nif:digest_root(H);
answer(H, mids) -> erlmcp_session_ha_nif:digest_mids(H);
answer(H, {leaves_under, Mids}) -> erlmcp_session_ha_nif:digest_leaves_under(H, Mids);
answer(H, leaves) -> erlmcp_session_ha_nif:digest_leaves(H);
answer(H, {entries, Leaves}) -> erlmcp_session_ha_nif:digest_entries(H, Leaves).

%% @doc Repairs every difference {@link validate/2} finds, then validates again.
-spec repair(reference(), [{node(), non_neg_integer()}]) -> {ok, map()} | {error, term()}.
repair(H, Peers) ->
    case validate(H, Peers) of
        {ok, _} = Ok -> Ok;
        {error, {inconsistent, Diffs}} ->
            maps:foreach(
              fun(_Node, unreachable) -> ok;
                 (_Node, {unavailable, _}) -> ok;
                 (Node, Ids) ->
                      ok = gen_server:call(?SERVER, {repair_with, Node, Ids}),
                      erlang:send({?SERVER, Node}, {sha_repair_request, node(), Ids}, [noconnect])
              end, Diffs),
            settle(H, Peers, 5)
    end.

%% The peers' repair frames travel back asynchronously: validate until they landed.
settle(H, Peers, 1) -> validate(H, Peers);
settle(H, Peers, Tries) ->
    case validate(H, Peers) of
        {ok, _} = Ok -> Ok;
        {error, _} -> timer:sleep(200), settle(H, Peers, Tries - 1)
    end.
