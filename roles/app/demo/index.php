<?php
// The demo application hasetup deploys when the inventory names no site of its own (roles.app.source).
// On each page view, what a small dynamic site does: a session, a few rows read by index and one row
// written on the primary through the application account; then it says which node served, the
// session's id and count, and what the database answered. Its tables are made by the mysql role.
declare(strict_types=1);

require __DIR__ . '/lib/db.php';

session_start();
$count = (int)($_SESSION['count'] ?? 0) + 1;
$_SESSION['count'] = $count;
session_write_close();

$node = gethostname() ?: 'unknown';
header('Cache-Control: no-store');
header('X-Session-Count: ' . $count);

try {
    $db = hasetup_db();
    // a few rows read by the primary key
    $first = ($count * 7) % 97 + 1;
    $read = $db->prepare('SELECT id, title FROM demo_items WHERE id BETWEEN ? AND ? ORDER BY id');
    $last = $first + 2;
    $read->bind_param('ii', $first, $last);
    $read->execute();
    $items = $read->get_result()->fetch_all(MYSQLI_ASSOC);
    // one row written: the page-view counter, spread over slots so that views never wait on one row lock
    $slot = random_int(0, 63);
    $write = $db->prepare('UPDATE demo_page_views SET views = views + 1 WHERE slot = ?');
    $write->bind_param('i', $slot);
    $write->execute();
    $total = (int)$db->query('SELECT SUM(views) FROM demo_page_views')->fetch_row()[0];
    $server = (string)$db->query('SELECT @@hostname')->fetch_row()[0];
    $db->close();
} catch (Throwable $e) {
    error_log('demo: database: ' . $e->getMessage());
    http_response_code(503);
    header('Content-Type: text/plain; charset=utf-8');
    echo "served by $node: the database does not answer\n";
    exit;
}

$h = static fn(string $s): string => htmlspecialchars($s, ENT_QUOTES);
header('Content-Type: text/html; charset=utf-8');
?>
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title><?= $h($node) ?></title></head>
<body>
<h1>served by <?= $h($node) ?></h1>
<p>session <code id="session"><?= $h(session_id()) ?></code>, view <span id="count"><?= $count ?></span></p>
<p>database <?= $h($server) ?>: <span id="views"><?= $total ?></span> page views in all; rows
<?php foreach ($items as $i): ?>
<span class="item"><?= (int)$i['id'] ?> <?= $h($i['title']) ?></span>
<?php endforeach; ?>
</p>
<p>release <span id="release"><?= $h(basename(__DIR__)) ?></span></p>
</body>
</html>
