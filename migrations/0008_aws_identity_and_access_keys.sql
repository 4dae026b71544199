ALTER TABLE `campaigns` ADD `aws_policy_variant` text DEFAULT 'console_and_api' NOT NULL;--> statement-breakpoint
ALTER TABLE `campaigns` ADD `access_keys_reviewed_at` integer;--> statement-breakpoint
ALTER TABLE `campaigns` ADD `access_keys_reviewed_by` text;--> statement-breakpoint
ALTER TABLE `campaigns` ADD `access_keys_review` text;--> statement-breakpoint
ALTER TABLE `directory_syncs` ADD `adopted` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `directory_syncs` ADD `conflicts` text DEFAULT '[]' NOT NULL;