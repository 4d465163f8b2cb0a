%%% @doc Stored values back into terms. A value that does not decode (bytes a C or Rust
%%% client wrote that are no external term) is a typed error for the caller,
%%% `{error, {undecodable, Key}}', never a crash.
%%%
%%% Values are decoded with `binary_to_term/1', not `[safe]': every value in the store was
%%% written by this node or by a member holding the frame key (frames without a valid MAC
%%% are refused before they are decoded), and members of one Erlang cluster already trust
%%% each other fully. `[safe]' would refuse an atom the reading node has not loaded yet
%%% (`#{tier => gold}' written on a node whose code created `gold'), which erlmcp's own
%%% session maps carry. See docs/DECISIONS.md, "Stored values decode as written".
%%% @hidden
-module(erlmcp_session_ha_term).

-export([decode/1, decode_values/1, decode_list/2]).

%% @doc One stored value.
-spec decode(binary()) -> {ok, term()} | {error, undecodable}.
decode(Bin) when is_binary(Bin) ->
    try {ok, binary_to_term(Bin)}
    catch error:badarg -> {error, undecodable}
    end.

%% @doc Every value of a map; the first key whose value does not decode names the error.
-spec decode_values(#{K => binary()}) -> {ok, #{K => term()}} | {error, {undecodable, K}}.
decode_values(Map) ->
    maps:fold(fun(_K, _V, {error, _} = E) -> E;
                 (K, V, {ok, Acc}) ->
                      case decode(V) of
                          {ok, T} -> {ok, Acc#{K => T}};
                          {error, undecodable} -> {error, {undecodable, K}}
                      end
              end, {ok, #{}}, Map).

%% @doc Every element of a list (the elements of set `Key').
-spec decode_list(term(), [binary()]) -> {ok, [term()]} | {error, {undecodable, term()}}.
decode_list(Key, Bins) ->
    lists:foldr(fun(_B, {error, _} = E) -> E;
                   (B, {ok, Acc}) ->
                        case decode(B) of
                            {ok, T} -> {ok, [T | Acc]};
                            {error, undecodable} -> {error, {undecodable, Key}}
                        end
                end, {ok, []}, Bins).
