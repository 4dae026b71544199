CREATE TABLE `directory_enforcement_records` (
	`user_id` text NOT NULL,
	`provider` text NOT NULL,
	`found_state` text NOT NULL,
	`set_state` text NOT NULL,
	`recorded_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`user_id`, `provider`),
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `drift_checks` (
	`id` integer PRIMARY KEY NOT NULL,
	`started_at` integer NOT NULL,
	`finished_at` integer NOT NULL,
	`checked` integer NOT NULL,
	`drifted` integer NOT NULL,
	`unchecked` integer NOT NULL,
	`error` text
);
--> statement-breakpoint
ALTER TABLE `users` ADD `directory_created_at` integer;--> statement-breakpoint
-- Directory users synced before this column existed: their creation date is already in the synced attributes.
UPDATE `users` SET `directory_created_at` = CAST(strftime('%s', json_extract(`provider_attributes`, '$.createdAt')) AS integer) * 1000 WHERE json_extract(`provider_attributes`, '$.createdAt') IS NOT NULL;
