DROP INDEX "user_states_desired";--> statement-breakpoint
CREATE INDEX "user_states_desired" ON "user_states" USING btree ("desired","deadline","user_id","campaign_id");