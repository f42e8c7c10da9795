// The incident's client, for Scripts/make-captures: Apache HttpClient 4.5 on Java 17
// sending `PUT /heartbeat` with a small JSON body.
//
//   java -cp httpclient.jar:httpcore.jar:commons-logging.jar:. Heartbeat \
//        leak URL COUNT INTERVAL-MS LOG DONE     a new HttpClients.createDefault() per
//                                                request; reads the status, never closes
//                                                the response or the client (the leak)
//   ... Heartbeat pool URL COUNT INTERVAL-MS LOG DONE
//                                                one client reused for COUNT requests
//                                                (each response consumed and closed),
//                                                then left idle: its pool keeps the
//                                                connection the server closes
// Logs one JSON line per connection (client and server address:port, status) to LOG,
// creates DONE and waits to be killed, holding every object so nothing is collected.
import java.io.FileWriter;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import org.apache.http.client.methods.CloseableHttpResponse;
import org.apache.http.client.methods.HttpPut;
import org.apache.http.client.protocol.HttpClientContext;
import org.apache.http.conn.ManagedHttpClientConnection;
import org.apache.http.entity.ContentType;
import org.apache.http.entity.StringEntity;
import org.apache.http.impl.client.CloseableHttpClient;
import org.apache.http.impl.client.HttpClients;
import org.apache.http.util.EntityUtils;

public class Heartbeat {
    static final List<Object> KEPT = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        String mode = args[0], url = args[1];
        int count = Integer.parseInt(args[2]);
        long interval = Long.parseLong(args[3]);
        FileWriter log = new FileWriter(args[4], true);
        CloseableHttpClient pooled = mode.equals("pool") ? HttpClients.createDefault() : null;
        String last = null;
        for (int i = 0; i < count; i++) {
            if (i > 0) Thread.sleep(interval);
            CloseableHttpClient client = pooled != null ? pooled : HttpClients.createDefault();
            HttpPut put = new HttpPut(url);
            put.setEntity(new StringEntity("{\"node\":\"n1\",\"seq\":" + i + "}", ContentType.APPLICATION_JSON));
            HttpClientContext context = HttpClientContext.create();
            CloseableHttpResponse response = client.execute(put, context);
            int status = response.getStatusLine().getStatusCode();
            Socket s = context.getConnection(ManagedHttpClientConnection.class).getSocket();
            String rec = String.format(
                "{\"side\": \"client\", \"event\": \"conn\", \"mode\": \"leak\", \"i\": %d, "
                + "\"client\": [\"%s\", %d], \"server\": [\"%s\", %d], \"status\": %d, "
                + "\"action\": \"%s\", \"t\": %.6f}",
                i, s.getLocalAddress().getHostAddress(), s.getLocalPort(),
                s.getInetAddress().getHostAddress(), s.getPort(), status,
                pooled != null ? "pooled" : "leaked", System.currentTimeMillis() / 1000.0);
            if (pooled != null) {
                EntityUtils.consume(response.getEntity());   // well-behaved: back to the pool
                response.close();
                last = rec;
            } else {
                KEPT.add(response);                          // the leak: never closed
                KEPT.add(client);
                log.write(rec + "\n");
                log.flush();
            }
        }
        if (last != null) {                                  // the pool's one connection
            log.write(last + "\n");
            log.flush();
        }
        KEPT.add(pooled);
        new FileWriter(args[5]).close();
        while (true) Thread.sleep(1000);
    }
}
