// Runs an embedded Neo4j Community DBMS with Bolt on 127.0.0.1 for TuneGraph (see graph/server.py).
// Usage: java ... Launcher HOME PORT [PAGECACHE]   (PAGECACHE like 512m; stop with SIGTERM)

import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.io.ByteUnit;

public final class Launcher {
    private static final String DATABASE = "neo4j";
    private static final long READY_TIMEOUT_MS = 600_000;

    private Launcher() {}

    public static void main(String[] args) {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: Launcher HOME PORT [PAGECACHE]");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        int port;
        long pagecache;
        try {
            port = Integer.parseInt(args[1]);
            pagecache = ByteUnit.parse(args.length == 3 ? args[2] : "512m");
        } catch (IllegalArgumentException e) {
            System.err.println("tunegraph-neo4j: bad PORT or PAGECACHE (like 512m): " + e.getMessage());
            System.exit(2);
            return;
        }

        DatabaseManagementService dbms;
        try {
            dbms = new DatabaseManagementServiceBuilder(home)
                    .setConfig(BoltConnector.enabled, true)
                    .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                    // Otherwise a second (routing) connector binds port 7688 and clashes between instances.
                    .setConfig(GraphDatabaseSettings.routing_enabled, false)
                    .setConfig(GraphDatabaseSettings.pagecache_memory, pagecache)
                    // Local, rebuildable data: no need to keep transaction logs for backups.
                    .setConfig(GraphDatabaseSettings.keep_logical_logs, "keep_none")
                    .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                    // Bolt's two Netty event loops each idle 5 s before exiting (default), which made
                    // every stop take 10 s; the databases are already checkpointed and closed by then.
                    .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                    .build();
        } catch (Throwable e) {
            System.err.println("tunegraph-neo4j: failed to start the DBMS in " + home);
            e.printStackTrace();
            System.exit(1);
            return;
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("tunegraph-neo4j: shutting down");
            try {
                dbms.shutdown();
            } finally {
                stopped.countDown();
                System.out.println("tunegraph-neo4j: stopped");
                System.out.flush();
            }
        }, "tunegraph-shutdown"));

        if (!dbms.database(DATABASE).isAvailable(READY_TIMEOUT_MS)) {
            System.err.println("tunegraph-neo4j: database '" + DATABASE + "' did not become available");
            System.exit(1);
        }
        System.out.println("tunegraph-neo4j: ready on bolt://127.0.0.1:" + port + " home " + home);
        System.out.flush();

        // Keep the JVM alive until SIGTERM runs the shutdown hook.
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
