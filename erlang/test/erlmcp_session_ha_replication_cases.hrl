%% The cases of erlmcp_session_ha_replication_cases as test cases of the suite that includes
%% this file (after its own -export attributes, before its first function); its all/0 lists
%% them with erlmcp_session_ha_replication_cases:all().
-export([replicates_to_two_peers/1,
         forwards_what_the_dead_origin_left_behind/1,
         partition_with_concurrent_writes_heals_to_one_value/1,
         restarted_node_recovers_from_disk_and_catches_up/1,
         crashed_server_is_restarted_and_loses_nothing/1,
         validate_names_differing_sessions_and_repair_converges/1,
         ended_session_stays_ended_in_every_region/1,
         status_reports_lag_and_sync_per_peer/1]).

-define(REPLICATION_CASES, erlmcp_session_ha_replication_cases).

replicates_to_two_peers(C) -> ?REPLICATION_CASES:replicates_to_two_peers(C).
forwards_what_the_dead_origin_left_behind(C) -> ?REPLICATION_CASES:forwards_what_the_dead_origin_left_behind(C).
partition_with_concurrent_writes_heals_to_one_value(C) -> ?REPLICATION_CASES:partition_with_concurrent_writes_heals_to_one_value(C).
restarted_node_recovers_from_disk_and_catches_up(C) -> ?REPLICATION_CASES:restarted_node_recovers_from_disk_and_catches_up(C).
crashed_server_is_restarted_and_loses_nothing(C) -> ?REPLICATION_CASES:crashed_server_is_restarted_and_loses_nothing(C).
validate_names_differing_sessions_and_repair_converges(C) -> ?REPLICATION_CASES:validate_names_differing_sessions_and_repair_converges(C).
ended_session_stays_ended_in_every_region(C) -> ?REPLICATION_CASES:ended_session_stays_ended_in_every_region(C).
status_reports_lag_and_sync_per_peer(C) -> ?REPLICATION_CASES:status_reports_lag_and_sync_per_peer(C).
