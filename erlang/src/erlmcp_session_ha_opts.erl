%%% @doc Options of `erlmcp_session_ha': validation and defaults.
%%%
%%% Keys (a map for `start_link/1', the `erlmcp_session_ha' application environment for
%%% `start_link/0'):
%%% <ul>
%%% <li>`region' (required): binary or atom naming this region. With `start_link/0' it falls
%%%     back to the `region' key of the `erlmcp' application (`primary | secondary | tertiary').</li>
%%% <li>`data_dir' (default `"data/session_ha/<region>"' under the current directory).</li>
%%% <li>`peers' (default `auto'): a list of nodes, or `auto' for every connected node that
%%%     runs `erlmcp_session_ha'.</li>
%%% <li>`snapshot_interval_ms' (default 60000; `infinity' for on-request only).</li>
%%% <li>`sync_interval_ms' (default 50): how often frames are shipped to peers.</li>
%%% <li>`fsync' (default `{every_ms, 10}'): `always | never | {every_ms, N}'.</li>
%%% <li>`recovery' (default `strict'): `strict | rebuild_from_peers'.</li>
%%% <li>`auth_key_file' (default `cookie'): a file of one or two secrets (one per line, at
%%%     least 16 bytes; the first signs, both are accepted: see the README's Security section)
%%%     from which every replication message's MAC key is derived; `cookie' derives it from
%%%     this node's Erlang cookie, which every node of a cluster shares.</li>
%%% <li>`max_clock_skew_ms' (default 60000): a frame with a stamp further ahead of this
%%%     node's wall clock is held back until the clocks agree.</li>
%%% <li>`encryption_key_file' (default `undefined': no encryption): path (binary or string)
%%%     of the key file for encryption at rest: one key per line as 64 hex digits, the first
%%%     the current key (every new file is encrypted under it), the others older keys still
%%%     read (rotation); `#' comments and blank lines allowed. A key file that does not load
%%%     fails the start with `{bad_key_file, Why}'; a store holding files encrypted under a
%%%     key it lacks, with `{missing_key, Why}' (nothing on disk is changed).</li>
%%% </ul>
%%% @end
-module(erlmcp_session_ha_opts).

-export([normalize/1, from_app_env/0, nif_opts/1, frame_keys/1, keys/0]).

-export_type([opts/0]).

-type opts() :: #{region := binary(),
                  data_dir := binary(),
                  peers := auto | [node()],
                  snapshot_interval_ms := pos_integer() | infinity,
                  sync_interval_ms := pos_integer(),
                  fsync := always | never | {every_ms, pos_integer()},
                  recovery := strict | rebuild_from_peers,
                  auth_key_file := cookie | binary(),
                  max_clock_skew_ms := pos_integer(),
                  encryption_key_file := undefined | binary()}.

%% @doc The option keys, in documentation order.
-spec keys() -> [atom()].
keys() ->
    [region, data_dir, peers, snapshot_interval_ms, sync_interval_ms, fsync, recovery,
     auth_key_file, max_clock_skew_ms, encryption_key_file].

%% @doc Validates a user's option map and fills in defaults.
-spec normalize(map()) -> {ok, opts()} | {error, {bad_option, atom(), term()} | {missing_option, region}}.
normalize(Opts) when is_map(Opts) ->
    case maps:find(region, Opts) of
        error -> {error, {missing_option, region}};
        {ok, Region0} ->
            case to_region(Region0) of
                error -> {error, {bad_option, region, Region0}};
                Region -> with_defaults(Region, Opts)
            end
    end.

with_defaults(Region, Opts) ->
    Defaults = #{region => Region,
                 data_dir => iolist_to_binary(filename:join(["data", "session_ha", Region])),
                 peers => auto,
                 snapshot_interval_ms => 60000,
                 sync_interval_ms => 50,
                 fsync => {every_ms, 10},
                 recovery => strict,
                 auth_key_file => cookie,
                 max_clock_skew_ms => 60000,
                 encryption_key_file => undefined},
    Merged = maps:merge(Defaults, maps:without([region], Opts)),
    Unknown = maps:keys(Merged) -- keys(),
    case Unknown of
        [K | _] -> {error, {bad_option, K, maps:get(K, Merged)}};
        [] -> check(maps:to_list(Merged), Merged)
    end.

check([], Opts) -> {ok, Opts};
check([{K, V} | Rest], Opts) ->
    case valid(K, V) of
        {ok, V1} -> check(Rest, Opts#{K := V1});
        error -> {error, {bad_option, K, V}}
    end.

valid(region, V) -> {ok, V};
valid(data_dir, V) when is_binary(V); is_list(V) ->
    try {ok, iolist_to_binary(V)} catch _:_ -> error end;
valid(peers, auto) -> {ok, auto};
valid(peers, L) when is_list(L) ->
    case lists:all(fun is_atom/1, L) of true -> {ok, L}; false -> error end;
valid(snapshot_interval_ms, infinity) -> {ok, infinity};
valid(snapshot_interval_ms, N) when is_integer(N), N > 0 -> {ok, N};
valid(sync_interval_ms, N) when is_integer(N), N > 0 -> {ok, N};
valid(fsync, always) -> {ok, always};
valid(fsync, never) -> {ok, never};
valid(fsync, {every_ms, N} = V) when is_integer(N), N > 0 -> {ok, V};
valid(recovery, V) when V =:= strict; V =:= rebuild_from_peers -> {ok, V};
valid(auth_key_file, cookie) -> {ok, cookie};
valid(auth_key_file, V) when is_binary(V), V =/= <<>>; is_list(V), V =/= [] ->
    try {ok, unicode:characters_to_binary(V)} catch _:_ -> error end;
valid(max_clock_skew_ms, N) when is_integer(N), N > 0 -> {ok, N};
valid(encryption_key_file, undefined) -> {ok, undefined};
valid(encryption_key_file, V) when is_binary(V), byte_size(V) > 0 -> {ok, V};
valid(encryption_key_file, V) when is_list(V), V =/= [] ->
    try unicode:characters_to_binary(V) of
        B when is_binary(B) -> {ok, B};
        _ -> error
    catch _:_ -> error
    end;
valid(_, _) -> error.

to_region(R) when is_atom(R), R =/= undefined -> atom_to_binary(R, utf8);
to_region(R) when is_binary(R), byte_size(R) > 0, byte_size(R) =< 255 -> R;
to_region(R) when is_list(R) ->
    try to_region(unicode:characters_to_binary(R)) catch _:_ -> error end;
to_region(_) -> error.

%% @doc The options from the application environment (`start_link/0').
-spec from_app_env() -> {ok, opts()} | {error, term()}.
from_app_env() ->
    Env = maps:from_list([{K, V} || K <- keys(), {ok, V} <- [application:get_env(erlmcp_session_ha, K)]]),
    Env1 = case maps:is_key(region, Env) of
               true -> Env;
               false ->
                   case application:get_env(erlmcp, region) of
                       {ok, R} -> Env#{region => R};
                       undefined -> Env
                   end
           end,
    normalize(Env1).

%% @doc The options map the NIF's `open/2' takes.
-spec nif_opts(opts()) -> map().
nif_opts(#{region := Region, fsync := Fsync, snapshot_interval_ms := Snap, recovery := Recovery,
           max_clock_skew_ms := Skew} = Opts) ->
    Base = #{region => Region, fsync => Fsync, snapshot_interval_ms => Snap, recovery => Recovery,
             frame_keys => frame_keys(Opts), max_clock_skew_ms => Skew},
    case maps:get(encryption_key_file, Opts, undefined) of
        undefined -> Base;
        KeyFile -> Base#{encryption_key_file => KeyFile}
    end.

%% @doc The frame keys `auth_key_file' names: the file's secrets, or the Erlang cookie's
%% text as the one secret (the NIF derives the key from it; see the README).
-spec frame_keys(#{auth_key_file := cookie | binary(), atom() => term()}) ->
          erlmcp_session_ha_nif:frame_keys().
frame_keys(#{auth_key_file := cookie}) -> {secrets, [atom_to_binary(erlang:get_cookie(), utf8)]};
frame_keys(#{auth_key_file := File}) -> {file, File}.
