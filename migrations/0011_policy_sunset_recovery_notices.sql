CREATE TABLE `recovery_code_notices` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`token_hash` text NOT NULL,
	`used_code_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `recovery_code_notices_token` ON `recovery_code_notices` (`token_hash`);--> statement-breakpoint
CREATE TABLE `sms_sunset_reminders` (
	`user_id` text NOT NULL,
	`campaign_id` text NOT NULL,
	`sunset_at` integer NOT NULL,
	`offset_days` integer NOT NULL,
	`sent_at` integer NOT NULL,
	PRIMARY KEY(`user_id`, `campaign_id`, `sunset_at`, `offset_days`),
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`campaign_id`) REFERENCES `campaigns`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `sms_sunset_runs` (
	`campaign_id` text NOT NULL,
	`sunset_at` integer NOT NULL,
	`applied_at` integer NOT NULL,
	`users` integer NOT NULL,
	`dropped` integer NOT NULL,
	PRIMARY KEY(`campaign_id`, `sunset_at`),
	FOREIGN KEY (`campaign_id`) REFERENCES `campaigns`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
ALTER TABLE `campaigns` ADD `methods_required` text DEFAULT 'one' NOT NULL;--> statement-breakpoint
ALTER TABLE `campaigns` ADD `sms_sunset_at` integer;--> statement-breakpoint
ALTER TABLE `campaigns` ADD `sms_after_sunset` text DEFAULT 'excluded' NOT NULL;--> statement-breakpoint
ALTER TABLE `campaigns` ADD `sms_sunset_grace_days` integer DEFAULT 30 NOT NULL;