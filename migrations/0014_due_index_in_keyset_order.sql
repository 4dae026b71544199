DROP INDEX `user_states_desired`;--> statement-breakpoint
CREATE INDEX `user_states_desired` ON `user_states` (`desired`,`deadline`,`user_id`,`campaign_id`);