CREATE TABLE `api_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`token_hash` text NOT NULL,
	`scopes` text NOT NULL,
	`created_by` text,
	`created_at` integer NOT NULL,
	`expires_at` integer,
	`last_used_at` integer,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_tokens_hash` ON `api_tokens` (`token_hash`);--> statement-breakpoint
CREATE TABLE `directory_syncs` (
	`id` integer PRIMARY KEY NOT NULL,
	`provider` text NOT NULL,
	`started_at` integer NOT NULL,
	`finished_at` integer,
	`status` text NOT NULL,
	`seen` integer DEFAULT 0 NOT NULL,
	`created` integer DEFAULT 0 NOT NULL,
	`updated` integer DEFAULT 0 NOT NULL,
	`skipped` integer DEFAULT 0 NOT NULL,
	`registration_source` text,
	`error` text
);
--> statement-breakpoint
CREATE INDEX `directory_syncs_provider` ON `directory_syncs` (`provider`,`id`);--> statement-breakpoint
CREATE TABLE `invitations` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`token_hash` text NOT NULL,
	`created_by` text,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `invitations_token` ON `invitations` (`token_hash`);--> statement-breakpoint
CREATE INDEX `invitations_user` ON `invitations` (`user_id`);--> statement-breakpoint
CREATE TABLE `provider_enrollments` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`provider` text NOT NULL,
	`kind` text NOT NULL,
	`device_id` text,
	`secret_sealed` text,
	`attempts` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`completed_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `provider_enrollments_user` ON `provider_enrollments` (`user_id`);--> statement-breakpoint
CREATE INDEX `provider_enrollments_expires` ON `provider_enrollments` (`expires_at`);--> statement-breakpoint
CREATE TABLE `rollout_snapshots` (
	`day` text PRIMARY KEY NOT NULL,
	`taken_at` integer NOT NULL,
	`counts` text NOT NULL
);
--> statement-breakpoint
DROP INDEX `user_states_desired`;--> statement-breakpoint
ALTER TABLE `user_states` ADD `soft_block_at` integer;--> statement-breakpoint
CREATE INDEX `user_states_desired` ON `user_states` (`desired`,`deadline`,`campaign_id`);--> statement-breakpoint
ALTER TABLE `campaigns` ADD `sms_policy` text DEFAULT 'counts' NOT NULL;--> statement-breakpoint
ALTER TABLE `campaigns` ADD `privileged_methods` text DEFAULT 'phishing_resistant' NOT NULL;--> statement-breakpoint
ALTER TABLE `campaigns` ADD `drift_policy` text DEFAULT 'reapply' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `external_id` text;--> statement-breakpoint
ALTER TABLE `users` ADD `provider_methods` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `provider_attributes` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `synced_at` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `drift_flagged_at` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `reenroll_until` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `users_provider_external` ON `users` (`provider`,`external_id`);--> statement-breakpoint
UPDATE `campaigns` SET `sms_policy` = CASE WHEN `sms_counts` THEN 'counts' ELSE 'excluded' END;