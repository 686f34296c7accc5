// The roles hasetup applies, in the order it applies them on each host.
import type { Role } from './engine/role.ts';
import common from '../roles/common/index.ts';
import firewall from '../roles/firewall/index.ts';
import apache from '../roles/apache/index.ts';
import mysql from '../roles/mysql/index.ts';

export const ROLES: Role[] = [common, firewall, apache, mysql];
