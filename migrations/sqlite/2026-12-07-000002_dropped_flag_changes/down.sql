DROP TABLE dropped_flag_changes;
