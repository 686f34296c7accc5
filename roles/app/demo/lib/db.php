<?php
// The application's database connection, from the credentials file the app role writes outside the
// document root (its path in the pool's environment, HASETUP_DB_CONFIG).
declare(strict_types=1);

function hasetup_db(): mysqli
{
    $file = getenv('HASETUP_DB_CONFIG') ?: '/etc/hasetup/database.ini';
    $cfg = parse_ini_file($file, false, INI_SCANNER_RAW);
    if ($cfg === false) {
        throw new RuntimeException("cannot read $file");
    }
    mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    $db = mysqli_init();
    $db->options(MYSQLI_OPT_CONNECT_TIMEOUT, 3);
    $db->real_connect($cfg['host'], $cfg['user'], $cfg['password'], $cfg['name'], (int)($cfg['port'] ?? 3306));
    $db->set_charset('utf8mb4');
    return $db;
}
