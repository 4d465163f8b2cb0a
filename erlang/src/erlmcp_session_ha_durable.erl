%%% @doc Waiting for durability without blocking a scheduler: the NIF's notifier thread
%%% sends `{Tag, ok}' (or `{Tag, {error, Reason}}') once the WAL record is durable.
%%% @hidden
-module(erlmcp_session_ha_durable).

-export([await/3]).

%% @doc Returns once the change at `Lsn' is durable, or with the log's error.
-spec await(reference(), non_neg_integer(), timeout()) -> ok | {error, term()}.
await(H, Lsn, Timeout) ->
    case erlmcp_session_ha_nif:durable_lsn(H) >= Lsn of
        true -> ok;
        false ->
            Tag = make_ref(),
            ok = erlmcp_session_ha_nif:await_durable(H, Lsn, self(), Tag),
            receive
                {Tag, Result} -> Result
            after Timeout ->
                {error, {timeout, durability}}
            end
    end.
