CREATE TABLE `campaign_pauses` (
	`id` text PRIMARY KEY NOT NULL,
	`campaign_id` text NOT NULL,
	`paused_at` integer NOT NULL,
	`signal` text NOT NULL,
	`figures` text NOT NULL,
	`resumed_at` integer,
	`resumed_by` text,
	`resume_reason` text,
	FOREIGN KEY (`campaign_id`) REFERENCES `campaigns`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `campaign_pauses_campaign` ON `campaign_pauses` (`campaign_id`,`paused_at`);--> statement-breakpoint
CREATE TABLE `campaign_wave_starts` (
	`campaign_id` text NOT NULL,
	`wave` integer NOT NULL,
	`started_at` integer NOT NULL,
	`started_by` text,
	PRIMARY KEY(`campaign_id`, `wave`),
	FOREIGN KEY (`campaign_id`) REFERENCES `campaigns`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `wave_snapshots` (
	`day` text NOT NULL,
	`campaign_id` text NOT NULL,
	`wave` integer NOT NULL,
	`taken_at` integer NOT NULL,
	`counts` text NOT NULL,
	PRIMARY KEY(`campaign_id`, `wave`, `day`),
	FOREIGN KEY (`campaign_id`) REFERENCES `campaigns`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
ALTER TABLE `campaigns` ADD `waves` text;--> statement-breakpoint
ALTER TABLE `campaigns` ADD `breaker_passes_per_100` integer DEFAULT 15 NOT NULL;--> statement-breakpoint
ALTER TABLE `campaigns` ADD `breaker_failure_percent` integer DEFAULT 20 NOT NULL;--> statement-breakpoint
ALTER TABLE `campaigns` ADD `breaker_not_me_per_100` integer DEFAULT 3 NOT NULL;--> statement-breakpoint
ALTER TABLE `campaigns` ADD `breaker_min_flips` integer DEFAULT 10 NOT NULL;--> statement-breakpoint
ALTER TABLE `user_states` ADD `wave` integer;