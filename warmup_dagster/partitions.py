"""One partition per mailbox, keyed by its address; kept in step by `mailbox_partitions_sensor`."""

import dagster as dg

mailbox_partitions = dg.DynamicPartitionsDefinition(name="mailboxes")
