%%% @doc erlmcp's existing `erlmcp_session_ha' API on the replicated store: same names,
%%% arities and result shapes as erlmcp's own module, so its session manager and runbooks
%%% keep working unchanged.
%%%
%%% A session started here is a store session with the fields `client_id', `session_data',
%%% `primary_node', `created_at' and `last_updated' (each a last-writer-wins field, values
%%% in external term format). `replication_status' is computed from the peers' acks:
%%% `synced' (every peer connected and caught up), `syncing' (every peer connected, some
%%% still receiving), `pending' (some peer unreachable, at least one reachable) or `failed'
%%% (peers known, none reachable).
%%% @hidden
-module(erlmcp_session_ha_compat).

-export([start_session/2, replicate_session/2, get_session/1, failover_session/2,
         get_active_region/1, store_session/1]).

-define(S, erlmcp_session_ha).

%% @doc A new session with a random 16-byte id.
-spec start_session(term(), map()) -> {ok, binary()} | {error, term()}.
start_session(ClientId, SessionData) when is_map(SessionData) ->
    Sid = crypto:strong_rand_bytes(16),
    Now = erlang:system_time(millisecond),
    case ?S:put(Sid, #{<<"client_id">> => ClientId, <<"session_data">> => SessionData,
                       <<"primary_node">> => node(), <<"created_at">> => Now,
                       <<"last_updated">> => Now}) of
        ok -> {ok, Sid};
        {error, _} = E -> E
    end.

%% @doc Replaces the data of an existing session.
-spec replicate_session(binary(), map()) -> ok | {error, session_not_found | term()}.
replicate_session(Sid, SessionData) when is_binary(Sid), is_map(SessionData) ->
    case ?S:get(Sid, <<"created_at">>) of
        {ok, _} ->
            ?S:put(Sid, #{<<"session_data">> => SessionData,
                          <<"last_updated">> => erlang:system_time(millisecond)});
        {error, not_found} -> {error, session_not_found}
    end.

%% @doc The session as erlmcp's session manager sees it.
-spec get_session(binary()) -> {ok, map()} | {error, not_found}.
get_session(Sid) when is_binary(Sid) ->
    case ?S:get(Sid) of
        {ok, #{<<"created_at">> := _} = F} ->
            {ok, Status} = ?S:get_replication_status(),
            {ok, #{session_id => Sid,
                   primary_node => maps:get(<<"primary_node">>, F, node()),
                   secondary_nodes => [N || N <- maps:get(replicas, Status), N =/= maps:get(<<"primary_node">>, F, node())],
                   session_data => maps:get(<<"session_data">>, F, #{}),
                   last_updated => maps:get(<<"last_updated">>, F, 0),
                   replication_status => replication_status(Status)}};
        _ -> {error, not_found}
    end.

%% @doc `synced | syncing | pending | failed' from the peers' acks (see the module doc).
-spec replication_status(map()) -> synced | syncing | pending | failed.
replication_status(#{peers := Peers}) when map_size(Peers) =:= 0 -> synced;
replication_status(#{peers := Peers}) ->
    Ps = maps:values(Peers),
    Connected = [P || #{connected := true} = P <- Ps],
    if Connected =:= [] -> failed;
       length(Connected) < length(Ps) -> pending;
       true ->
            case lists:all(fun(#{pending_ops := N}) -> N =:= 0 end, Connected) of
                true -> synced;
                false -> syncing
            end
    end.

%% @doc Makes `Node' the session's primary (this node or a known peer).
-spec failover_session(binary(), node()) -> ok | {error, not_found | {unknown_node, node()} | term()}.
failover_session(Sid, Node) when is_binary(Sid), is_atom(Node) ->
    Known = [node() | [N || #{node := N} <- ?S:peers()]],
    case {lists:member(Node, Known), ?S:get(Sid, <<"created_at">>)} of
        {false, _} -> {error, {unknown_node, Node}};
        {true, {error, not_found}} -> {error, not_found};
        {true, {ok, _}} ->
            ?S:put(Sid, #{<<"primary_node">> => Node,
                          <<"last_updated">> => erlang:system_time(millisecond)})
    end.

%% @doc The region serving the session: its primary's, when that node is up; else the
%% region of the first reachable node (this one first).
-spec get_active_region(binary()) -> {ok, binary()} | {error, not_found | no_active_nodes}.
get_active_region(Sid) when is_binary(Sid) ->
    case ?S:get(Sid, <<"primary_node">>) of
        {error, not_found} -> {error, not_found};
        {ok, Primary} ->
            {ok, #{region := Own}} = ?S:get_replication_status(),
            Up = [{node(), Own} | [{N, R} || #{node := N, region := R, connected := true} <- ?S:peers(),
                                             is_binary(R)]],
            %% This node is always up, so `no_active_nodes' is only possible when the store
            %% itself is gone (the call then fails before this point).
            case lists:keyfind(Primary, 1, Up) of
                {_, Region} -> {ok, Region};
                false -> {ok, Own}
            end
    end.

%% @doc Stores a session info map as `get_session/1' returns it.
-spec store_session(map()) -> ok | {error, term()}.
store_session(#{session_id := Sid} = Info) when is_binary(Sid) ->
    Now = erlang:system_time(millisecond),
    Fields = #{<<"session_data">> => maps:get(session_data, Info, #{}),
               <<"primary_node">> => maps:get(primary_node, Info, node()),
               <<"last_updated">> => maps:get(last_updated, Info, Now)},
    Created = case ?S:get(Sid, <<"created_at">>) of
                  {ok, _} -> #{};
                  {error, not_found} -> #{<<"created_at">> => Now}
              end,
    ?S:put(Sid, maps:merge(Fields, Created)).
