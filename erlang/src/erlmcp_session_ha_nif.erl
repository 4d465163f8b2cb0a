%%% @doc The session-ha NIF: session state as CRDTs in a durable, replicated store.
%%%
%%% A thin binding of the Rust library `session_ha' (crate `nif/'). One handle is one open
%%% store directory (one region's replica). Handles may be shared between processes: every
%%% function is safe to call concurrently.
%%%
%%% Errors: wrong argument types (not a binary, not a handle, a negative or too large
%%% integer, an improper list, an unknown or ill-typed option) raise `badarg'; every other
%%% failure is `{error, Reason}' (see {@type reason()}). After {@link close/1} every function
%%% returns `{error, closed}'.
%%%
%%% Durability: writes return `{ok, Lsn}' once applied and queued for the write-ahead log,
%%% never after an fsync. To know that a write (or a received frame) is on disk, call
%%% {@link await_durable/4}: the process gets `{Tag, ok}' when record `Lsn' is durable, or
%%% `{Tag, {error, Reason}}' if the log fails or the store closes first.
%%%
%%% Schedulers: writes, reads, `durable_lsn', `await_durable', `heartbeat', `rewind',
%%% `add_peer', `hello', `open_hello', `digest_root', `digest_mids', `digest_diff_mids' and `info' run on normal
%%% schedulers (microseconds);
%%% `put_fields/3' too, up to 64 pairs and 64 KiB, on a dirty CPU scheduler above that.
%%% Frames, digests, `session_ids' and `tick' run on dirty CPU schedulers; `open', `close',
%%% `status', `remove_member', `set_frame_keys', snapshots, verification and backups on dirty
%%% I/O schedulers.
-module(erlmcp_session_ha_nif).

-export([
    open/2,
    close/1,
    info/1,
    put/4,
    put_fields/3,
    delete_field/3,
    end_session/2,
    touch/3,
    counter_add/4,
    set_add/4,
    set_remove/4,
    durable_lsn/1,
    await_durable/4,
    get/2,
    get_field/3,
    session_ids/1,
    add_peer/3,
    remove_member/2,
    frame_for/2,
    heartbeat/2,
    'receive'/2,
    rewind/2,
    repair_frames/3,
    digest_root/1,
    digest_mids/1,
    digest_diff_mids/2,
    digest_leaves_under/2,
    digest_diff_leaves_under/3,
    digest_leaves/1,
    digest_diff_leaves/2,
    digest_entries/2,
    lift_fence/1,
    hello/2,
    open_hello/2,
    set_frame_keys/2,
    status/1,
    tick/1,
    expire_due/1,
    snapshot/1,
    compact/1,
    verify/1,
    backup/2,
    verify_dir/1
]).


-export_type([
    handle/0,
    options/0,
    frame_keys/0,
    lsn/0,
    replica_id/0,
    session/0,
    reason/0,
    report/0
]).

-on_load(init/0).

-define(APP, erlmcp_session_ha).
-define(LIB, "erlmcp_session_ha_nif").

%% An open store. A resource reference: compare, store and pass it around, nothing else.
-type handle() :: reference().
-type options() :: #{
    region := binary(),
    fsync => always | never | {every_ms, pos_integer()},
    snapshot_interval_ms => pos_integer() | infinity,
    tick_interval_ms => pos_integer() | infinity,
    segment_size => pos_integer(),
    recovery => strict | rebuild_from_peers,
    frame_keys => frame_keys(),
    max_clock_skew_ms => pos_integer(),
    encryption_key_file => binary()
}.
%% Frame keys (see the README's Security section): an `auth_key_file' (one or two secrets,
%% one per line, the first signing), one or two secrets given directly, or none (messages
%% then carry no MAC and none may).
-type frame_keys() :: {file, Path :: binary()} | {secrets, [binary(), ...]} | undefined.
%% Sequence number of a write-ahead log record.
-type lsn() :: non_neg_integer().
%% A replica's id (`id' in {@link info/1}), stable across restarts of one region.
-type replica_id() :: non_neg_integer().
-type session() :: #{
    fields := #{binary() => binary()},
    counters := #{binary() => integer()},
    sets := #{binary() => [binary()]},
    expires_at := integer() | undefined
}.
-type reason() ::
    invalid_session_id
    | invalid_key
    | too_large
    | too_many_fields
    | session_too_large
    | ended
    | counter_overflow
    | invalid_ttl
    | removed_replica
    | own_frame
    | unknown_peer
    | no_space
    | locked
    | closed
    | {corrupt | io | data_loss | poisoned | bad_frame | invalid_argument, binary()}
    | {unauthenticated | not_a_member | replayed_frame | clock_ahead | auth_key, binary()}
    %% Encryption at rest: a key the store needs is not in the key file, encrypted bytes
    %% fail authentication (altered), the key file does not load.
    | {missing_key | tampered | bad_key_file, binary()}.
-type report() :: #{atom() => term()}.
-type error() :: {error, reason()}.

%%% ----- loading -----------------------------------------------------------------------------

-spec init() -> ok | {error, term()}.
init() ->
    Path = filename:join(priv_dir(), ?LIB),
    case filelib:is_regular(Path ++ ".so") of
        false ->
            logger:error(
                "~s: ~s.so is missing; build it with scripts/build_nif.sh "
                "(rebar3 compile runs it)",
                [?MODULE, Path]
            ),
            {error, {nif_not_built, Path ++ ".so"}};
        true ->
            erlang:load_nif(Path, 0)
    end.

%% code:priv_dir/1 needs the application in the code path; when only this module's beam is
%% (a bare -pa), priv/ is found next to its ebin/.
-spec priv_dir() -> file:filename().
priv_dir() ->
    case code:priv_dir(?APP) of
        {error, bad_name} ->
            case code:which(?MODULE) of
                Beam when is_list(Beam) ->
                    Ebin = filename:dirname(filename:absname(Beam)),
                    filename:join(filename:dirname(Ebin), "priv");
                _ ->
                    "priv"
            end;
        Dir ->
            Dir
    end.

-define(NOT_LOADED, erlang:nif_error({nif_not_loaded, ?MODULE})).

%%% ----- lifecycle ---------------------------------------------------------------------------

%% @doc Opens (recovering) or creates the store in `Dir'. `region' is required; the defaults
%% are `fsync => {every_ms, 10}', `snapshot_interval_ms => 60000',
%% `tick_interval_ms => 200', 64 MiB segments, `recovery => strict'. Intervals are at most
%% 4294967295 ms. The report says what recovery found and did.
-spec open(Dir :: binary(), Opts :: options()) -> {ok, handle(), report()} | error().
open(_Dir, _Opts) -> ?NOT_LOADED.

%% @doc Flushes the log, stops the store's threads, releases the directory, and answers
%% every pending {@link await_durable/4}. A second close returns `{error, closed}'.
-spec close(handle()) -> ok | error().
close(_H) -> ?NOT_LOADED.

-spec info(handle()) ->
    #{id := replica_id(), region := binary(), incarnation := non_neg_integer(), dir := binary()}
    | error().
info(_H) -> ?NOT_LOADED.

%% A call made on a normal scheduler gives up with `{error, busy}' rather than wait long for
%% the store's lock (a normal scheduler must never be held); it is then made again on a
%% dirty scheduler, which may wait.
retry_dirty({error, busy}, Dirty) -> Dirty();
retry_dirty(Result, _Dirty) -> Result.

%%% ----- writes ------------------------------------------------------------------------------

-spec put(handle(), Sid :: binary(), Key :: binary(), Val :: binary()) -> {ok, lsn()} | error().
put(H, Sid, Key, Val) ->
    retry_dirty(put_nif(H, Sid, Key, Val), fun() -> put_dirty(H, Sid, Key, Val) end).

%% Normal scheduler; `{error, busy}' when the store's lock is held too long.
-spec put_nif(handle(), binary(), binary(), binary()) -> {ok, lsn()} | error().
put_nif(_H, _Sid, _Key, _Val) -> ?NOT_LOADED.

%% Dirty CPU scheduler: waits for the lock.
-spec put_dirty(handle(), binary(), binary(), binary()) -> {ok, lsn()} | error().
put_dirty(_H, _Sid, _Key, _Val) -> ?NOT_LOADED.

%% @doc Sets several fields in one change.
-spec put_fields(handle(), Sid :: binary(), [{Key :: binary(), Val :: binary()}]) ->
    {ok, lsn()} | error().
put_fields(H, Sid, Fields) ->
    case put_fields_nif(H, Sid, Fields) of
        reschedule -> put_fields_dirty(H, Sid, Fields);
        {error, busy} -> put_fields_dirty(H, Sid, Fields);
        Result -> Result
    end.

%% Normal scheduler; returns `reschedule' (having written nothing) for lists over 64 pairs
%% or 64 KiB.
-spec put_fields_nif(handle(), binary(), [{binary(), binary()}]) ->
    {ok, lsn()} | error() | reschedule.
put_fields_nif(_H, _Sid, _Fields) -> ?NOT_LOADED.

%% Dirty CPU scheduler, any length.
-spec put_fields_dirty(handle(), binary(), [{binary(), binary()}]) -> {ok, lsn()} | error().
put_fields_dirty(_H, _Sid, _Fields) -> ?NOT_LOADED.

-spec delete_field(handle(), Sid :: binary(), Key :: binary()) -> {ok, lsn()} | error().
delete_field(H, Sid, Key) ->
    retry_dirty(delete_field_nif(H, Sid, Key), fun() -> delete_field_dirty(H, Sid, Key) end).

%% Normal scheduler; `{error, busy}' when the store's lock is held too long.
-spec delete_field_nif(handle(), binary(), binary()) -> {ok, lsn()} | error().
delete_field_nif(_H, _Sid, _Key) -> ?NOT_LOADED.

%% Dirty CPU scheduler: waits for the lock.
-spec delete_field_dirty(handle(), binary(), binary()) -> {ok, lsn()} | error().
delete_field_dirty(_H, _Sid, _Key) -> ?NOT_LOADED.

%% @doc Ends the session for good: no later or replayed write brings it back.
-spec end_session(handle(), Sid :: binary()) -> {ok, lsn()} | error().
end_session(H, Sid) ->
    retry_dirty(end_session_nif(H, Sid), fun() -> end_session_dirty(H, Sid) end).

%% Normal scheduler; `{error, busy}' when the store's lock is held too long.
-spec end_session_nif(handle(), binary()) -> {ok, lsn()} | error().
end_session_nif(_H, _Sid) -> ?NOT_LOADED.

%% Dirty CPU scheduler: waits for the lock.
-spec end_session_dirty(handle(), binary()) -> {ok, lsn()} | error().
end_session_dirty(_H, _Sid) -> ?NOT_LOADED.

%% @doc Extends the session's life to now + `TtlMs'; afterwards it reads as absent.
-spec touch(handle(), Sid :: binary(), TtlMs :: non_neg_integer()) -> {ok, lsn()} | error().
touch(H, Sid, TtlMs) ->
    retry_dirty(touch_nif(H, Sid, TtlMs), fun() -> touch_dirty(H, Sid, TtlMs) end).

%% Normal scheduler; `{error, busy}' when the store's lock is held too long.
-spec touch_nif(handle(), binary(), non_neg_integer()) -> {ok, lsn()} | error().
touch_nif(_H, _Sid, _TtlMs) -> ?NOT_LOADED.

%% Dirty CPU scheduler: waits for the lock.
-spec touch_dirty(handle(), binary(), non_neg_integer()) -> {ok, lsn()} | error().
touch_dirty(_H, _Sid, _TtlMs) -> ?NOT_LOADED.

-spec counter_add(handle(), Sid :: binary(), Key :: binary(), Delta :: integer()) ->
    {ok, lsn()} | error().
counter_add(H, Sid, Key, Delta) ->
    retry_dirty(counter_add_nif(H, Sid, Key, Delta), fun() -> counter_add_dirty(H, Sid, Key, Delta) end).

%% Normal scheduler; `{error, busy}' when the store's lock is held too long.
-spec counter_add_nif(handle(), binary(), binary(), integer()) -> {ok, lsn()} | error().
counter_add_nif(_H, _Sid, _Key, _Delta) -> ?NOT_LOADED.

%% Dirty CPU scheduler: waits for the lock.
-spec counter_add_dirty(handle(), binary(), binary(), integer()) -> {ok, lsn()} | error().
counter_add_dirty(_H, _Sid, _Key, _Delta) -> ?NOT_LOADED.

-spec set_add(handle(), Sid :: binary(), Key :: binary(), Elem :: binary()) ->
    {ok, lsn()} | error().
set_add(H, Sid, Key, Elem) ->
    retry_dirty(set_add_nif(H, Sid, Key, Elem), fun() -> set_add_dirty(H, Sid, Key, Elem) end).

%% Normal scheduler; `{error, busy}' when the store's lock is held too long.
-spec set_add_nif(handle(), binary(), binary(), binary()) -> {ok, lsn()} | error().
set_add_nif(_H, _Sid, _Key, _Elem) -> ?NOT_LOADED.

%% Dirty CPU scheduler: waits for the lock.
-spec set_add_dirty(handle(), binary(), binary(), binary()) -> {ok, lsn()} | error().
set_add_dirty(_H, _Sid, _Key, _Elem) -> ?NOT_LOADED.

-spec set_remove(handle(), Sid :: binary(), Key :: binary(), Elem :: binary()) ->
    {ok, lsn()} | error().
set_remove(H, Sid, Key, Elem) ->
    retry_dirty(set_remove_nif(H, Sid, Key, Elem), fun() -> set_remove_dirty(H, Sid, Key, Elem) end).

%% Normal scheduler; `{error, busy}' when the store's lock is held too long.
-spec set_remove_nif(handle(), binary(), binary(), binary()) -> {ok, lsn()} | error().
set_remove_nif(_H, _Sid, _Key, _Elem) -> ?NOT_LOADED.

%% Dirty CPU scheduler: waits for the lock.
-spec set_remove_dirty(handle(), binary(), binary(), binary()) -> {ok, lsn()} | error().
set_remove_dirty(_H, _Sid, _Key, _Elem) -> ?NOT_LOADED.

%%% ----- durability --------------------------------------------------------------------------

%% @doc Every log record up to this one is durable.
-spec durable_lsn(handle()) -> lsn() | error().
durable_lsn(_H) -> ?NOT_LOADED.

%% @doc Asks for `{Tag, ok}' to be sent to `Pid' once record `Lsn' is durable (at once if it
%% already is), or `{Tag, {error, Reason}}' if the log fails, the store closes first, or
%% `Lsn' was never handed out.
-spec await_durable(handle(), lsn(), Pid :: pid(), Tag :: term()) -> ok | error().
await_durable(_H, _Lsn, _Pid, _Tag) -> ?NOT_LOADED.

%%% ----- reads -------------------------------------------------------------------------------

-spec get(handle(), Sid :: binary()) -> {ok, session()} | {error, not_found} | error().
get(H, Sid) ->
    retry_dirty(get_nif(H, Sid), fun() -> get_dirty(H, Sid) end).

%% Normal scheduler; `{error, busy}' when the store's lock is held too long.
-spec get_nif(handle(), binary()) -> {ok, session()} | {error, not_found} | error().
get_nif(_H, _Sid) -> ?NOT_LOADED.

%% Dirty CPU scheduler: waits for the lock.
-spec get_dirty(handle(), binary()) -> {ok, session()} | {error, not_found} | error().
get_dirty(_H, _Sid) -> ?NOT_LOADED.

-spec get_field(handle(), Sid :: binary(), Key :: binary()) ->
    {ok, binary()} | {error, not_found} | error().
get_field(H, Sid, Key) ->
    retry_dirty(get_field_nif(H, Sid, Key), fun() -> get_field_dirty(H, Sid, Key) end).

%% Normal scheduler; `{error, busy}' when the store's lock is held too long.
-spec get_field_nif(handle(), binary(), binary()) -> {ok, binary()} | {error, not_found} | error().
get_field_nif(_H, _Sid, _Key) -> ?NOT_LOADED.

%% Dirty CPU scheduler: waits for the lock.
-spec get_field_dirty(handle(), binary(), binary()) -> {ok, binary()} | {error, not_found} | error().
get_field_dirty(_H, _Sid, _Key) -> ?NOT_LOADED.

%% @doc Ids of the live sessions, in order.
-spec session_ids(handle()) -> [binary()] | error().
session_ids(_H) -> ?NOT_LOADED.

%%% ----- replication -------------------------------------------------------------------------

-spec add_peer(handle(), replica_id(), Region :: binary()) -> ok | error().
add_peer(_H, _PeerId, _Region) -> ?NOT_LOADED.

%% @doc Removes a replica from membership for good (logged and made durable first).
-spec remove_member(handle(), replica_id()) -> ok | error().
remove_member(_H, _PeerId) -> ?NOT_LOADED.

%% @doc The next frame for a peer, or `none' when it lacks nothing.
-spec frame_for(handle(), replica_id()) -> {ok, binary()} | none | error().
frame_for(_H, _PeerId) -> ?NOT_LOADED.

-spec heartbeat(handle(), replica_id()) -> {ok, binary()} | error().
heartbeat(_H, _PeerId) -> ?NOT_LOADED.

%% @doc Applies a frame or an ack from a peer. Send `Reply' back only after `Lsn' is durable
%% ({@link await_durable/4}); with `Lsn =:= none' it may go at once. A frame that does not
%% decode gives `{error, {bad_frame, _}}' and changes nothing.
-spec 'receive'(handle(), binary()) ->
    {ok, Reply :: binary() | none, Lsn :: lsn() | none} | error().
'receive'(_H, _Bin) -> ?NOT_LOADED.

%% @doc Forgets what was sent to the peer and not acknowledged (resend from its acks).
-spec rewind(handle(), replica_id()) -> ok | error().
rewind(_H, _PeerId) -> ?NOT_LOADED.

%% @doc Frames carrying this node's full state of the given sessions (or that it does not
%% hold them), each within the frame budget.
-spec repair_frames(handle(), replica_id(), [binary()]) -> {ok, [binary()]} | error().
repair_frames(_H, _PeerId, _Sids) -> ?NOT_LOADED.

%% @doc Root of the digest tree, 16 bytes big endian: equal roots, equal live state.
-spec digest_root(handle()) -> <<_:128>> | error().
digest_root(_H) -> ?NOT_LOADED.

%% @doc The 256 middle sums of the digest tree: 256 x 16 bytes, big endian (the first step of
%% a comparison over the wire).
-spec digest_mids(handle()) -> binary() | error().
digest_mids(_H) -> ?NOT_LOADED.

%% @doc Middle buckets whose sums differ from a peer's {@link digest_mids/1} (`badarg' unless
%% exactly 4 KiB).
-spec digest_diff_mids(handle(), TheirMids :: binary()) -> [0..255] | error().
digest_diff_mids(_H, _TheirMids) -> ?NOT_LOADED.

%% @doc The leaf sums under the given middle buckets: 256 x 16 bytes per bucket, in order.
-spec digest_leaves_under(handle(), [0..255]) -> binary() | error().
digest_leaves_under(_H, _Mids) -> ?NOT_LOADED.

%% @doc Leaves under `Mids' whose sums differ from a peer's {@link digest_leaves_under/2} of
%% the same `Mids' (`badarg' unless exactly 4 KiB per bucket).
-spec digest_diff_leaves_under(handle(), [0..255], TheirLeaves :: binary()) ->
          [0..65535] | error().
digest_diff_leaves_under(_H, _Mids, _TheirLeaves) -> ?NOT_LOADED.

%% @doc Every leaf sum of the digest tree: 65536 x 16 bytes, big endian.
-spec digest_leaves(handle()) -> binary() | error().
digest_leaves(_H) -> ?NOT_LOADED.

%% @doc Leaves whose sums differ from a peer's {@link digest_leaves/1} (`badarg' unless
%% exactly 1 MiB).
-spec digest_diff_leaves(handle(), TheirLeaves :: binary()) -> [0..65535] | error().
digest_diff_leaves(_H, _TheirLeaves) -> ?NOT_LOADED.

%% @doc The sessions in the given leaves, with their digests.
-spec digest_entries(handle(), [0..65535]) -> [{binary(), <<_:128>>}] | error().
digest_entries(_H, _Leaves) -> ?NOT_LOADED.

%%% ----- operations --------------------------------------------------------------------------

%% @doc Lifts the catch-up fence by hand (see `erlmcp_session_ha:lift_fence/0'): reads and
%% writes were refused because the store may hold state older than its peers collected.
-spec lift_fence(handle()) -> ok | error().
lift_fence(_H) -> ?NOT_LOADED.

%% @doc This store's hello for the peers of node `Node' (its name): authenticated under
%% the frame keys, it tells a peer which replica runs on `Node'.
-spec hello(handle(), Node :: binary()) -> {ok, binary()} | error().
hello(_H, _Node) -> ?NOT_LOADED.

%% @doc Opens a peer's hello: `{ok, #{id, region, node, boot}}' once authenticated. It makes
%% nobody a member: call {@link add_peer/3} for a node you want. Refusals are counted.
-spec open_hello(handle(), binary()) ->
    {ok, #{id := replica_id(), region := binary(), node := binary(), boot := non_neg_integer()}}
    | error().
open_hello(_H, _Bin) -> ?NOT_LOADED.

%% @doc Replaces the frame keys (a rotation, see the README): `{error, {auth_key, _}}' for
%% a key file that cannot be used, and the keys are then unchanged.
-spec set_frame_keys(handle(), frame_keys()) -> ok | error().
set_frame_keys(_H, _Keys) -> ?NOT_LOADED.

%% @doc Everything an operator needs about the store: the replica (version vector, sessions,
%% digest root, op log, tombstones, gaps, clock skew), each peer (acked vector, pending ops,
%% lag, in-flight frames, how far its clock runs ahead), the log, the snapshots, and the
%% trust boundary (`trust': whether messages are authenticated, refusals per claimed sender,
%% retired replicas and who has yet to confirm them, who blocks tombstone collection, a wall
%% clock jump held back).
-spec status(handle()) -> report() | error().
status(_H) -> ?NOT_LOADED.

%% @doc Runs maintenance now (expiry, resends, tombstone collection); the store also does it
%% every `tick_interval_ms'.
-spec tick(handle()) -> ok | error().
tick(_H) -> ?NOT_LOADED.

%% @doc Ends every session whose deadline has passed now (each end replicates); returns how
%% many. The store's maintenance does the same every `tick_interval_ms'.
-spec expire_due(handle()) -> {ok, non_neg_integer()} | error().
expire_due(_H) -> ?NOT_LOADED.

%% @doc Takes an incremental snapshot now.
-spec snapshot(handle()) -> {ok, report()} | error().
snapshot(_H) -> ?NOT_LOADED.

%% @doc Writes a new base snapshot of every session now.
-spec compact(handle()) -> {ok, report()} | error().
compact(_H) -> ?NOT_LOADED.

%% @doc Checks every checksum of the store's files (read only).
-spec verify(handle()) -> {ok, report()} | {error, {corrupt, report()}} | error().
verify(_H) -> ?NOT_LOADED.

%% @doc Writes a self-verifying backup of the store to `File', which must not exist.
-spec backup(handle(), File :: binary()) -> {ok, report()} | error().
backup(_H, _File) -> ?NOT_LOADED.

%% @doc {@link verify/1} for a directory, with or without an open handle (read only).
-spec verify_dir(Dir :: binary()) -> {ok, report()} | {error, {corrupt, report()}} | error().
verify_dir(_Dir) -> ?NOT_LOADED.
