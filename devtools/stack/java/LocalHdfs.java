import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.protocol.DatanodeID;

/**
 * One NameNode and one DataNode on 127.0.0.1, in the foreground, until SIGTERM.
 *
 * Usage: LocalHdfs <base dir> <NameNode RPC port> <NameNode HTTP port>
 *
 * The base directory keeps the namespace and the blocks: the first start formats it, later starts
 * reuse it, so files survive a restart. Replication is 1 (one DataNode).
 *
 * Fault tests stop and restart the DataNode alone (the NameNode stays up): write `stop` or `start`
 * into `<base dir>/datanode-control`; the file is deleted once the command is done (a failure is
 * written to `<base dir>/datanode-control.failed`). A stopped DataNode is marked dead at once, so the
 * NameNode gives writers no block location (no heartbeat timeout to wait for); a restarted one keeps
 * its ports and its blocks.
 */
public final class LocalHdfs {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: LocalHdfs <base dir> <namenode rpc port> <namenode http port>");
            System.exit(2);
        }
        File base = new File(args[0]).getAbsoluteFile();
        int rpcPort = Integer.parseInt(args[1]);
        int httpPort = Integer.parseInt(args[2]);
        File formatted = new File(base, "formatted");

        Configuration conf = new Configuration();
        conf.set("dfs.replication", "1");
        conf.set("dfs.permissions.enabled", "false");
        conf.set("dfs.namenode.safemode.extension", "0");
        conf.set("dfs.webhdfs.enabled", "true");

        MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf, base)
                .nameNodePort(rpcPort)
                .nameNodeHttpPort(httpPort)
                .numDataNodes(1)
                .storagesPerDatanode(1)
                .format(!formatted.exists())
                .build();
        cluster.waitActive();
        if (!formatted.exists() && !formatted.createNewFile()) {
            throw new IllegalStateException("cannot write " + formatted);
        }
        Runtime.getRuntime().addShutdownHook(new Thread(cluster::shutdown, "local-hdfs-shutdown"));
        System.out.println("LocalHdfs ready: hdfs://127.0.0.1:" + cluster.getNameNodePort()
                + " (web http://127.0.0.1:" + httpPort + ")");
        System.out.flush();
        controlDataNode(cluster, new File(base, "datanode-control"));
    }

    /** Runs the `stop` / `start` commands written into `control`, until the process ends. */
    private static void controlDataNode(MiniDFSCluster cluster, File control) throws Exception {
        File failed = new File(control.getPath() + ".failed");
        MiniDFSCluster.DataNodeProperties stopped = null;
        while (true) {
            Thread.sleep(100);
            if (!control.exists()) {
                continue;
            }
            String command = new String(Files.readAllBytes(control.toPath()), StandardCharsets.UTF_8).trim();
            try {
                if (command.equals("stop") && stopped == null) {
                    DatanodeID id = cluster.getDataNodes().get(0).getDatanodeId();
                    stopped = cluster.stopDataNode(0);
                    cluster.setDataNodeDead(id);
                } else if (command.equals("start") && stopped != null) {
                    cluster.restartDataNode(stopped, true);
                    cluster.waitActive();
                    stopped = null;
                }
                System.out.println("LocalHdfs DataNode: " + command + " done");
            } catch (Exception error) {
                Files.write(failed.toPath(), error.toString().getBytes(StandardCharsets.UTF_8));
                System.out.println("LocalHdfs DataNode: " + command + " failed: " + error);
            }
            System.out.flush();
            Files.deleteIfExists(control.toPath());
        }
    }
}
