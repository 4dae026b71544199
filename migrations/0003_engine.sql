CREATE TABLE `campaigns` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`target_kind` text NOT NULL,
	`target_value` text,
	`starts_at` integer NOT NULL,
	`deadline` integer NOT NULL,
	`privileged_deadline` integer,
	`new_user_window_days` integer NOT NULL,
	`reminder_offsets` text NOT NULL,
	`max_extension_days` integer NOT NULL,
	`sms_counts` integer NOT NULL,
	`soft_block_days` integer,
	`armed_at` integer,
	`armed_by` text,
	`created_by` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`archived_at` integer
);
--> statement-breakpoint
CREATE TABLE `enforcement_jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`action` text NOT NULL,
	`deadline_version` integer NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`lease_owner` text,
	`lease_expires_at` integer,
	`last_error` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `enforcement_jobs_key` ON `enforcement_jobs` (`user_id`,`action`,`deadline_version`);--> statement-breakpoint
CREATE INDEX `enforcement_jobs_ready` ON `enforcement_jobs` (`status`,`next_attempt_at`);--> statement-breakpoint
CREATE TABLE `exemptions` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`kind` text NOT NULL,
	`reason` text NOT NULL,
	`owner` text NOT NULL,
	`expires_at` integer,
	`created_by` text,
	`created_at` integer NOT NULL,
	`revoked_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `exemptions_user` ON `exemptions` (`user_id`);--> statement-breakpoint
CREATE TABLE `extensions` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`campaign_id` text NOT NULL,
	`days` integer NOT NULL,
	`reason` text NOT NULL,
	`approved_by` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`campaign_id`) REFERENCES `campaigns`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `extensions_user` ON `extensions` (`user_id`);--> statement-breakpoint
CREATE TABLE `reminders_sent` (
	`user_id` text NOT NULL,
	`campaign_id` text NOT NULL,
	`offset_days` integer NOT NULL,
	`sent_at` integer NOT NULL,
	PRIMARY KEY(`user_id`, `campaign_id`, `offset_days`)
);
--> statement-breakpoint
CREATE TABLE `state_transitions` (
	`id` integer PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`from_state` text,
	`to_state` text NOT NULL,
	`reason` text NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `state_transitions_user` ON `state_transitions` (`user_id`,`id`);--> statement-breakpoint
CREATE TABLE `user_states` (
	`user_id` text PRIMARY KEY NOT NULL,
	`state` text NOT NULL,
	`reason` text NOT NULL,
	`deadline` integer,
	`campaign_id` text,
	`desired` text,
	`deadline_version` integer DEFAULT 0 NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `user_states_desired` ON `user_states` (`desired`,`deadline`);--> statement-breakpoint
CREATE INDEX `user_states_state` ON `user_states` (`state`);