import java.io.File;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;

/**
 * One NameNode and one DataNode on 127.0.0.1, in the foreground, until SIGTERM.
 *
 * Usage: LocalHdfs <base dir> <NameNode RPC port> <NameNode HTTP port>
 *
 * The base directory keeps the namespace and the blocks: the first start formats it, later starts
 * reuse it, so files survive a restart. Replication is 1 (one DataNode).
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
        Thread.currentThread().join();
    }
}
