"""ClickHouse storage through clickhouse-connect: connection, migrations, queries."""
