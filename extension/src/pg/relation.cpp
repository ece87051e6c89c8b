#include "pg/relation.h"

extern "C" {
#include "catalog/namespace.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

namespace jobq::pg {

Oid JobqRelid(const char *name) {
    Oid relid = get_relname_relid(name, get_namespace_oid("jobq", false));
    if (!OidIsValid(relid)) elog(ERROR, "jobq: relation jobq.%s does not exist", name);
    return relid;
}

AttrNumber ColumnOf(Relation rel, const char *column) {
    TupleDesc desc = RelationGetDescr(rel);
    for (int i = 0; i < desc->natts; ++i) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (!att->attisdropped && strcmp(NameStr(att->attname), column) == 0) return att->attnum;
    }
    elog(ERROR, "jobq: column %s of %s does not exist", column, RelationGetRelationName(rel));
}

}  // namespace jobq::pg
