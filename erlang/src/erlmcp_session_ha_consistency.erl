%%% @doc Consistency between regions, run in the caller's process (never inside a server,
%%% so two nodes validating each other at once cannot deadlock): compare digest roots with
%%% every connected peer; where they differ, compare the 65,536 leaf sums, then the session
%%% digests of the differing leaves, and name exactly the differing sessions. `repair/2'
%%% exchanges the full state of those sessions both ways and validates again.
%%% @hidden
-module(erlmcp_session_ha_consistency).

-export([validate/2, repair/2, answer/2]).

-include("erlmcp_session_ha.hrl").

-define(SERVER, erlmcp_session_ha).

%% @doc Compares this node's digests with every peer in `Peers' (`[{Node, ReplicaId}]').
-spec validate(reference(), [{node(), non_neg_integer()}]) ->
    {ok, #{peers := [node()], sessions := non_neg_integer()}} |
    {error, {inconsistent, #{node() => [binary()] | unreachable}}}.
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
        Root = erlmcp_session_ha_nif:digest_root(H),
        case ask(Node, root) of
            Root -> [];
            _ ->
                Leaves = erlmcp_session_ha_nif:digest_diff_leaves(H, ask(Node, leaves)),
                Mine = erlmcp_session_ha_nif:digest_entries(H, Leaves),
                Theirs = ask(Node, {entries, Leaves}),
                diff_entries(Mine, Theirs)
        end
    catch
        exit:_ -> unreachable
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
-spec answer(reference(), root | leaves | {entries, [0..65535]}) -> term().
answer(H, root) -> erlmcp_session_ha_nif:digest_root(H);
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
