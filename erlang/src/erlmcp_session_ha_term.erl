%%% @doc Stored values back into terms, safely: every value read from the store came from
%%% this node, a peer or a disk, so it is decoded with `binary_to_term/2' and `[safe]' (no
%%% new atoms, no funs that would need a missing module). A value that does not decode
%%% is a typed error for the caller, `{error, {undecodable, Key}}', never a crash.
%%%
%%% `[safe]' refuses atoms this node does not know yet: a term written by a node running code
%%% this one has not loaded (an atom of a module loaded only there) does not decode until that
%%% module is loaded here.
%%% @hidden
-module(erlmcp_session_ha_term).

-export([decode/1, decode_values/1, decode_list/2]).

%% @doc One stored value.
-spec decode(binary()) -> {ok, term()} | {error, undecodable}.
decode(Bin) when is_binary(Bin) ->
    try {ok, binary_to_term(Bin, [safe])}
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
