CREATE TABLE `approval_requests` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`kind` text NOT NULL,
	`options` text DEFAULT '{}' NOT NULL,
	`reason` text NOT NULL,
	`requested_by` text NOT NULL,
	`requested_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`decided_by` text,
	`decided_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`requested_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`decided_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `approval_requests_one_pending` ON `approval_requests` (`user_id`,`kind`) WHERE "approval_requests"."status" = 'pending';--> statement-breakpoint
CREATE INDEX `approval_requests_status` ON `approval_requests` (`status`,`expires_at`);--> statement-breakpoint
CREATE INDEX `approval_requests_user` ON `approval_requests` (`user_id`,`requested_at`);